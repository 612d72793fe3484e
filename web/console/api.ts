// The query API as the console uses it: same-origin JSON reads (the console
// is served by the API itself, so it never talks to another host) and the
// wire shapes of its answers. Every read carries the session's key
// (session.ts); an answer of 401 or 403 forgets it and brings the login back. Shapes the server defines are imported as
// types (erased from the bundle), so console and API cannot drift apart.

import type { Summary } from "../../internal/view/fleet-view.js";
import { keyRefused, session } from "./session.js";
import type { RocketView } from "../../internal/view/rocket-view.js";

/** A rocket as GET /rockets and the event stream send it: the view's own type, so the two cannot drift apart. */
export type Rocket = RocketView;

export interface RocketPage {
  rockets: Rocket[];
  total: number;
  nextCursor: string | null;
}

/** GET /rockets/summary. */
export type { Summary };

export interface NumberRange {
  from: number;
  to: number;
}

export type HistoryOutcome = "applied" | "buffered" | "duplicate";

export interface HistoryEvent {
  seq: number;
  receivedAt: string;
  messageNumber: number;
  messageTime: string;
  messageType: string;
  message: Record<string, unknown>;
  outcome: HistoryOutcome | null;
  speedAfter: number | null;
}

export interface RocketHistory {
  channel: string;
  complete: boolean;
  missing: NumberRange[];
  heldSince: string | null;
  lastApplied: number;
  waitingFor: NumberRange[];
  pendingMessages: number;
  rejected: number;
  total: number;
  events: HistoryEvent[];
  nextCursor: string | null;
}

export interface ListParams {
  sort: string;
  status?: string;
  type?: string;
  mission?: string;
  limit: number;
  cursor?: string;
}

/** A non-2xx answer, with its problem document when there is one. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string } | undefined,
  ) {
    super(problem?.detail ?? `HTTP ${status}`);
  }
}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json", ...session.headers() }, signal });
  if (res.status === 401 || res.status === 403) keyRefused();
  if (!res.ok) {
    const problem = res.headers.get("content-type")?.includes("json") ? ((await res.json()) as { title?: string; detail?: string }) : undefined;
    throw new ApiError(res.status, problem);
  }
  return (await res.json()) as T;
}

const query = (params: Record<string, string | number | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const text = q.toString();
  return text === "" ? "" : `?${text}`;
};

export const api = {
  list: (p: ListParams, signal?: AbortSignal) => getJson<RocketPage>(`/rockets${query({ ...p })}`, signal),
  summary: (signal?: AbortSignal) => getJson<Summary>("/rockets/summary", signal),
  rocket: (channel: string, signal?: AbortSignal) => getJson<Rocket>(`/rockets/${encodeURIComponent(channel)}`, signal),
  history: (channel: string, cursor: string | undefined, signal?: AbortSignal) =>
    getJson<RocketHistory>(`/rockets/${encodeURIComponent(channel)}/events${query({ order: "messageNumber", limit: 5000, cursor })}`, signal),
};

/** What the API says to a key: `ok`, `unknown` (401: no such key) or `forbidden` (403: it cannot read). */
export type KeyCheck = "ok" | "unknown" | "forbidden" | "unavailable";

/** Asks the API whether `key` (or no key) may read, without touching the session. */
export async function checkKey(key: string | undefined): Promise<KeyCheck> {
  try {
    const res = await fetch("/rockets/summary", { headers: { accept: "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) } });
    if (res.status === 401) return "unknown";
    if (res.status === 403) return "forbidden";
    // Anything else (the view still loading: 503) means the key itself was taken.
    return "ok";
  } catch {
    return "unavailable";
  }
}
