// Checks the fleet through the query API until every rocket shows exactly
// its expected final state, and says how long that took. A rocket that once
// matched stays matched: its last message is applied and nothing after it
// exists, so only the rockets still off are polled again.
//
// Every request gets a signal of its own, tied to the caller's for as long
// as the request runs: fetch leaves a listener behind on the signal it is
// given, and polling many times a second with one long-lived signal piled up
// thousands of them (and MaxListenersExceededWarning lines).

import type { Rocket } from "../../internal/domain/mod.js";
import { bareUrl, targetOf } from "./credentials.js";

export interface VerifyOptions {
  /** API base URL, e.g. http://localhost:8080; userinfo in it is sent as Basic auth. */
  apiUrl: string;
  /** A key with the `read` scope, sent as Bearer when the URL has no userinfo. */
  key?: string;
  expected: ReadonlyMap<string, Rocket>;
  timeoutMs: number;
  pollIntervalMs?: number;
  signal?: AbortSignal;
  /** Called after every poll with how many rockets match so far (for progress lines). */
  onPoll?: (matched: number) => void;
}

export interface Mismatch {
  channel: string;
  /** `missing`, or each differing field as `field: expected X, got Y`. */
  problems: string[];
}

export interface VerifyResult {
  ok: boolean;
  /** performance.now() when the last rocket was seen in its final state (or when it gave up). */
  settledAt: number;
  matched: number;
  mismatches: Mismatch[];
}

/** The fields the API must show, with these names (pendingMessages must be 0 once final). */
const FIELDS = ["type", "mission", "speed", "status", "explosionReason", "launchedAt", "updatedAt", "lastMessageNumber"] as const;

export function compareRocket(expected: Rocket, actual: Record<string, unknown> | undefined): string[] {
  if (!actual) return ["missing"];
  const problems: string[] = [];
  for (const field of FIELDS) {
    if (actual[field] !== expected[field]) {
      problems.push(`${field}: expected ${JSON.stringify(expected[field])}, got ${JSON.stringify(actual[field])}`);
    }
  }
  if (actual["pendingMessages"] !== 0) problems.push(`pendingMessages: expected 0, got ${JSON.stringify(actual["pendingMessages"])}`);
  return problems;
}

/** Above this many rockets still off, one sweep through the list pages beats a GET per rocket. */
const LIST_SWEEP_THRESHOLD = 100;
const PAGE_LIMIT = 1000;
const PARALLEL_GETS = 8;
/** A request the API has not answered in this long is abandoned (and the poll retried). */
const REQUEST_TIMEOUT_MS = 10_000;

async function getJson(url: string, signal: AbortSignal | undefined, authorization: string | undefined): Promise<{ status: number; body: unknown }> {
  if (signal?.aborted) throw signal.reason;
  const request = new AbortController();
  const abort = () => request.abort(signal?.reason);
  signal?.addEventListener("abort", abort, { once: true });
  const timer = setTimeout(() => request.abort(new Error(`no answer from ${url} within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
  try {
    const res = await fetch(url, { signal: request.signal, headers: authorization === undefined ? {} : { authorization } });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
}

export type Seen = Map<string, Record<string, unknown> | undefined>;

/** The API's base URL without userinfo, and the Authorization header to send it. */
interface Api {
  base: string;
  authorization: string | undefined;
}

async function sweepList(api: Api, wanted: ReadonlySet<string>, signal?: AbortSignal): Promise<Seen> {
  const seen: Seen = new Map();
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const { status, body } = await getJson(`${api.base}/rockets?${query}`, signal, api.authorization);
    if (status !== 200) throw new Error(`GET /rockets answered ${status}: ${JSON.stringify(body)}`);
    const page = body as { rockets: Record<string, unknown>[]; nextCursor: string | null };
    for (const rocket of page.rockets) {
      const channel = rocket["channel"];
      if (typeof channel === "string" && wanted.has(channel)) seen.set(channel, rocket);
    }
    cursor = page.nextCursor;
  } while (cursor);
  return seen;
}

async function getEach(api: Api, channels: readonly string[], signal?: AbortSignal): Promise<Seen> {
  const seen: Seen = new Map();
  let next = 0;
  const worker = async () => {
    while (next < channels.length) {
      const channel = channels[next++]!;
      const { status, body } = await getJson(`${api.base}/rockets/${encodeURIComponent(channel)}`, signal, api.authorization);
      if (status === 200) seen.set(channel, body as Record<string, unknown>);
      else if (status === 404) seen.set(channel, undefined);
      else throw new Error(`GET /rockets/${channel} answered ${status}: ${JSON.stringify(body)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_GETS, channels.length) }, worker));
  return seen;
}

/**
 * What the API holds now for each of `channels`: the rocket, or undefined
 * when it has none. `apiUrl` may carry userinfo (sent as Basic auth), else
 * `key` is sent as Bearer.
 */
export async function currentRockets(apiUrl: string, channels: readonly string[], signal?: AbortSignal, key?: string): Promise<Seen> {
  const target = targetOf(apiUrl, key);
  const api = { base: bareUrl(target), authorization: target.authorization };
  return channels.length > LIST_SWEEP_THRESHOLD ? sweepList(api, new Set(channels), signal) : getEach(api, channels, signal);
}

export async function verifyFleet(options: VerifyOptions): Promise<VerifyResult> {
  const { apiUrl, expected, timeoutMs, signal } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  const off = new Map<string, string[]>([...expected.keys()].map((c) => [c, ["not checked yet"]]));
  let lastError: string | undefined;
  for (;;) {
    try {
      const channels = [...off.keys()];
      const seen = await currentRockets(apiUrl, channels, signal, options.key);
      for (const channel of channels) {
        const problems = compareRocket(expected.get(channel)!, seen.get(channel));
        if (problems.length === 0) off.delete(channel);
        else off.set(channel, problems);
      }
      lastError = undefined;
    } catch (err) {
      // The API may be restarting; keep polling until the deadline.
      if (signal?.aborted) throw err;
      lastError = err instanceof Error ? err.message : String(err);
    }
    options.onPoll?.(expected.size - off.size);
    const now = performance.now();
    if (off.size === 0 || now >= deadline || signal?.aborted) {
      const mismatches = [...off].map(([channel, problems]) => ({ channel, problems }));
      if (lastError && mismatches.length > 0) mismatches[0]!.problems.push(`last poll failed: ${lastError}`);
      return { ok: off.size === 0, settledAt: now, matched: expected.size - off.size, mismatches };
    }
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
}
