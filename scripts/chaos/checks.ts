// What a chaos run must find once the faults are over, each check read from
// the outside (the APIs, the sequencers' ops endpoints, NATS itself), never
// from the services' own view of their success:
//
// - every rocket exact and nothing pending, through each API;
// - every partition's consumer drained (nothing undelivered, nothing unacked);
// - every partition owned by exactly one sequencer;
// - the stream holding each message sent exactly once (nothing lost, nothing
//   stored twice), by reading every stored message's Nats-Msg-Id;
// - no replica of the stream or of a KV bucket whose state drifted from its
//   leader's, from each node's own monitoring view.
//
// The comparisons are pure functions (tested on their own); the rest only
// fetches what they compare.

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Rocket } from "../../internal/domain/mod.js";
import { consumerName } from "../../internal/nats/partition-consumer.js";
import { LEASE_BUCKET, STATE_BUCKET, STREAM_NAME, TOPOLOGY_BUCKET } from "../../internal/nats/topology.js";
import type { NatsServer } from "../../internal/testing/nats-server.js";
import { verifyFleet } from "../launch/verifier.js";
import type { Member } from "./chaos-cluster.js";
import { bearer, TEST_KEYS } from "../../internal/testing/api-keys.js";

export interface CheckOutcome {
  name: string;
  ok: boolean;
  /** What was seen: the figures when ok, what is off when not. */
  detail: string;
}

/** The streams whose replicas must agree: the events and every KV bucket's stream. */
export const REPLICATED_STREAMS = [STREAM_NAME, `KV_${STATE_BUCKET}`, `KV_${LEASE_BUCKET}`, `KV_${TOPOLOGY_BUCKET}`];

const MAX_LISTED = 5;
const list = (items: readonly (string | number)[]) =>
  items.length <= MAX_LISTED ? items.join(", ") : `${items.slice(0, MAX_LISTED).join(", ")} and ${items.length - MAX_LISTED} more`;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0]!;

// ---------------------------------------------------------------- ownership

export interface OwnedPartitions {
  label: string;
  partitions: number[];
  /** False for a sequencer that is down or still starting (it owns nothing). */
  up: boolean;
}

/** Partitions nobody owns and partitions owned more than once (by whom). */
export function ownershipProblems(owned: readonly OwnedPartitions[], partitions: number): string[] {
  const owners = new Map<number, string[]>();
  for (const { label, partitions: ps } of owned) {
    for (const p of ps) owners.set(p, [...(owners.get(p) ?? []), label]);
  }
  const problems: string[] = [];
  const unowned = Array.from({ length: partitions }, (_, p) => p).filter((p) => !owners.has(p));
  if (unowned.length > 0) problems.push(`partitions without an owner: ${list(unowned)}`);
  const doubled = [...owners].filter(([, by]) => by.length > 1).map(([p, by]) => `${p} (${by.join(" and ")})`);
  if (doubled.length > 0) problems.push(`partitions owned more than once: ${list(doubled)}`);
  const unknown = [...owners.keys()].filter((p) => !Number.isInteger(p) || p < 0 || p >= partitions);
  if (unknown.length > 0) problems.push(`partitions that do not exist: ${list(unknown)}`);
  return problems;
}

/** Whether the sequencers that are up own equal shares, give or take one (issue 10's "even balance"). */
export function isBalanced(owned: readonly OwnedPartitions[]): boolean {
  const shares = owned.filter((o) => o.up).map((o) => o.partitions.length);
  return shares.length === 0 || Math.max(...shares) - Math.min(...shares) <= 1;
}

export function describeShares(owned: readonly OwnedPartitions[]): string {
  return owned.map((o) => `${o.label}${o.up ? "" : " (down)"} ${o.partitions.length}`).join(", ");
}

/**
 * What each sequencer says it owns (GET /partitions on its ops port). One
 * that is not running owns nothing (its leases only keep others away until
 * they expire); one being started owns nothing until its ops server answers
 * (it listens before it joins). One that is up must answer.
 */
export async function readOwnership(sequencers: readonly Member[]): Promise<OwnedPartitions[]> {
  const owned: OwnedPartitions[] = [];
  for (const m of sequencers) {
    if (!m.process.running) {
      owned.push({ label: m.label, partitions: [], up: false });
      continue;
    }
    try {
      const res = await fetch(`${m.process.url}/partitions`, { signal: AbortSignal.timeout(2000), headers: bearer(TEST_KEYS.scraper) });
      owned.push({ label: m.label, partitions: ((await res.json()) as { partitions: number[] }).partitions, up: !m.starting });
    } catch (err) {
      if (!m.starting) throw new Error(`${m.label} GET /partitions failed: ${errorText(err)}`);
      owned.push({ label: m.label, partitions: [], up: false });
    }
  }
  return owned;
}

/** Every partition owned exactly once among the sequencers. */
export async function checkOwnership(sequencers: readonly Member[], partitions: number): Promise<CheckOutcome> {
  const name = "ownership";
  let owned: OwnedPartitions[];
  try {
    owned = await readOwnership(sequencers);
  } catch (err) {
    return { name, ok: false, detail: errorText(err) };
  }
  const problems = ownershipProblems(owned, partitions);
  const shares = describeShares(owned);
  return { name, ok: problems.length === 0, detail: problems.length === 0 ? `each of ${partitions} partitions owned once (${shares})` : `${problems.join("; ")} (${shares})` };
}

// ---------------------------------------------------------------- consumers

export async function checkConsumers(jsm: JetStreamManager, partitions: number): Promise<CheckOutcome> {
  const name = "consumers";
  const busy: string[] = [];
  for (let p = 0; p < partitions; p++) {
    try {
      const info = await jsm.consumers.info(STREAM_NAME, consumerName(p));
      if (info.num_pending > 0 || info.num_ack_pending > 0) busy.push(`${consumerName(p)} ${info.num_pending} pending, ${info.num_ack_pending} unacked`);
    } catch (err) {
      return { name, ok: false, detail: `${consumerName(p)}: ${errorText(err)}` };
    }
  }
  return { name, ok: busy.length === 0, detail: busy.length === 0 ? `all ${partitions} partition consumers drained` : `not drained: ${list(busy)}` };
}

// ---------------------------------------------------------------- APIs

export async function checkApi(api: Member, expected: ReadonlyMap<string, Rocket>): Promise<CheckOutcome> {
  const name = api.label;
  try {
    const verdict = await verifyFleet({ apiUrl: api.process.url, key: TEST_KEYS.reader, expected, timeoutMs: 0 });
    if (!verdict.ok) {
      const first = verdict.mismatches[0]!;
      return { name, ok: false, detail: `${verdict.mismatches.length} of ${expected.size} rockets off, e.g. ${first.channel}: ${first.problems.join("; ")}` };
    }
    const res = await fetch(`${api.process.url}/rockets/summary`, { signal: AbortSignal.timeout(5000), headers: bearer(TEST_KEYS.reader) });
    const total = ((await res.json()) as { total: number }).total;
    if (total !== expected.size) return { name, ok: false, detail: `shows ${total} rockets, ${expected.size} were sent` };
    return { name, ok: true, detail: `${expected.size} rockets exact, none pending` };
  } catch (err) {
    return { name, ok: false, detail: errorText(err) };
  }
}

// ---------------------------------------------------------------- stream contents

export interface StoredIds {
  missing: string[];
  duplicated: string[];
  unexpected: string[];
}

/** Compares how often each message id is stored with the ids that were sent (each must be there once). */
export function compareStoredIds(stored: ReadonlyMap<string, number>, sent: ReadonlySet<string>): StoredIds {
  const missing = [...sent].filter((id) => !stored.has(id));
  const duplicated = [...stored].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  const unexpected = [...stored.keys()].filter((id) => !sent.has(id));
  return { missing, duplicated, unexpected };
}

/** A read that sees no message for this long starts over with a new consumer. */
const STALL_MS = 10_000;

/**
 * Reads every message's Nats-Msg-Id from the stream with an ordered consumer
 * (headers only). A read that stalls (its consumer lost in a leader change
 * on a loaded machine: once, under the whole suite, none came in 60 s) starts
 * over with a new one, within `timeoutMs` in all.
 */
export async function storedMessageIds(js: JetStreamClient, jsm: JetStreamManager, timeoutMs: number): Promise<Map<string, number>> {
  const { state } = await jsm.streams.info(STREAM_NAME);
  if (state.messages === 0) return new Map();
  const deadline = Date.now() + timeoutMs;
  let best = 0;
  while (Date.now() < deadline) {
    const counts = new Map<string, number>();
    const consumer = await js.consumers.get(STREAM_NAME, { headers_only: true });
    const messages = await consumer.consume({ max_messages: 1000 });
    let stall = setTimeout(() => messages.stop(), Math.min(STALL_MS, deadline - Date.now()));
    let read = 0;
    try {
      for await (const m of messages) {
        clearTimeout(stall);
        stall = setTimeout(() => messages.stop(), Math.max(1, Math.min(STALL_MS, deadline - Date.now())));
        const id = m.headers?.get("Nats-Msg-Id") ?? `(no id) seq ${m.seq}`;
        counts.set(id, (counts.get(id) ?? 0) + 1);
        read += 1;
        if (m.seq >= state.last_seq) break;
      }
    } finally {
      clearTimeout(stall);
      await messages.close();
    }
    if (read === state.messages) return counts;
    best = Math.max(best, read);
  }
  throw new Error(`read at most ${best} of the stream's ${state.messages} messages within ${timeoutMs} ms`);
}

export async function checkStream(js: JetStreamClient, jsm: JetStreamManager, sent: ReadonlySet<string>): Promise<CheckOutcome> {
  const name = "stream";
  try {
    const stored = await storedMessageIds(js, jsm, 60_000);
    const { missing, duplicated, unexpected } = compareStoredIds(stored, sent);
    const problems = [
      missing.length && `${missing.length} sent messages missing (${list(missing)})`,
      duplicated.length && `${duplicated.length} stored more than once (${list(duplicated)})`,
      unexpected.length && `${unexpected.length} never sent (${list(unexpected)})`,
    ].filter(Boolean);
    const total = [...stored.values()].reduce((a, b) => a + b, 0);
    return { name, ok: problems.length === 0, detail: problems.length === 0 ? `${total} messages stored, every message sent exactly once` : problems.join("; ") };
  } catch (err) {
    return { name, ok: false, detail: errorText(err) };
  }
}

// ---------------------------------------------------------------- replicas

export interface ReplicaState {
  messages: number;
  first_seq: number;
  last_seq: number;
}

/** One node's monitoring view: its own replica of each stream, and who it says leads it. */
export interface NodeView {
  node: string;
  streams: Map<string, { state: ReplicaState; leader: string | undefined }>;
}

interface JszStreams {
  account_details?: { stream_detail?: { name: string; state: ReplicaState; cluster?: { leader?: string } }[] }[];
}

export async function readNodeView(server: NatsServer): Promise<NodeView> {
  const jsz = await server.monitor<JszStreams>("/jsz?accounts=true&streams=true");
  const streams = new Map<string, { state: ReplicaState; leader: string | undefined }>();
  for (const s of (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? [])) {
    streams.set(s.name, { state: s.state, leader: s.cluster?.leader });
  }
  // /jsz does not say which server answered; the harness knows.
  return { node: server.serverName, streams };
}

const describe = (s: ReplicaState) => `messages ${s.messages}, seq ${s.first_seq}..${s.last_seq}`;

/** Every replica whose messages, first or last sequence differ from its leader's, or that is missing. */
export function replicaDrift(views: readonly NodeView[], streams: readonly string[]): string[] {
  const problems: string[] = [];
  for (const stream of streams) {
    const leaderName = views.map((v) => v.streams.get(stream)?.leader).find((l) => l !== undefined);
    const leader = views.find((v) => v.node === leaderName)?.streams.get(stream);
    if (!leaderName || !leader) {
      problems.push(`${stream}: no leader${leaderName ? ` (${leaderName} has no replica)` : ""}`);
      continue;
    }
    for (const view of views) {
      if (view.node === leaderName) continue;
      const replica = view.streams.get(stream);
      if (!replica) problems.push(`${stream}: ${view.node} has no replica`);
      else if (
        replica.state.messages !== leader.state.messages ||
        replica.state.first_seq !== leader.state.first_seq ||
        replica.state.last_seq !== leader.state.last_seq
      ) {
        problems.push(`${stream}: ${view.node} has ${describe(replica.state)}, leader ${leaderName} ${describe(leader.state)}`);
      }
    }
  }
  return problems;
}

/**
 * Compares the replicas until one snapshot of all nodes agrees or `timeoutMs`
 * passes. The lease bucket takes several writes a second (heartbeats), so a
 * snapshot can catch a write on its way to the followers: only a difference
 * that never goes away is drift.
 */
export async function checkReplicas(nodes: readonly NatsServer[], timeoutMs: number): Promise<CheckOutcome> {
  const name = "replicas";
  const deadline = Date.now() + timeoutMs;
  let problems: string[] = [];
  let attempts = 0;
  do {
    attempts += 1;
    try {
      const views = await Promise.all(nodes.map((n) => readNodeView(n)));
      problems = replicaDrift(views, REPLICATED_STREAMS);
      if (problems.length === 0) {
        const events = views[0]!.streams.get(STREAM_NAME)?.state;
        return { name, ok: true, detail: `${nodes.length} replicas of ${REPLICATED_STREAMS.length} streams agree (${STREAM_NAME}: ${events ? describe(events) : "?"})` };
      }
    } catch (err) {
      problems = [errorText(err)];
    }
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  return { name, ok: false, detail: `still differing after ${attempts} snapshots over ${timeoutMs / 1000} s: ${problems.join("; ")}` };
}
