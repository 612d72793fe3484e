// What a run must have kept, checked against everything the world recorded:
// each copy the stream stored (every one was answered 2xx), every ack the
// consumers received, and every committed change of every state entry.
//
// The promise, as invariants:
// - prefix: every committed state of a channel is the in-order fold of the
//   first stored copy of each number 1..lastApplied, less the numbers its
//   skipped ranges gave up (applied once, in order, with its first content);
//   lastApplied never goes back. A later copy's content is accepted only if
//   it was stored while the first was not yet acked (in flight at an
//   instance that crashed, say): the sequencer cannot have known the first.
// - skip: a range is given up only under GAP_POLICY=skip, and never over a
//   number the sequencer had acked a copy of before the write that gave it up
//   (that message had arrived: skipping it loses it).
// - located: once faults ended, and at the end, every acked message of a
//   channel with an entry is applied, or given up by a skip, or still held in
//   the stream at or above the entry's gap.fromSeq. (A channel without an
//   entry has parked in the stream only; completion checks its launch finds
//   them.)
// - complete: once every number was sent and the faults ended, every channel
//   reaches its last number within the run's bound and every consumer
//   drains (no rocket stops, none stops another).
// - deadline: under GAP_POLICY=skip, a gap open past its deadline while no
//   fault runs is given up within the sweep's reach.
// - history: at the end, the API's history of each rocket (the stream's
//   messages folded with the rocket's skipped ranges) is complete and ends in
//   the state the sequencer stored.

import { foldHistory, utcInstant, type StoredMessage } from "../../domain/history.js";
import type { RocketMessage } from "../../domain/message.js";
import { eventSubject } from "../../domain/partition.js";
import { MAX_SKIPPED_RECORDED } from "../../domain/sequencing.js";
import { decodeDelivery } from "../../sequencer/partition-worker.js";
import { apply, type Rocket } from "../../domain/rocket.js";
import type { ChannelState } from "../../domain/sequencing.js";
import type { Load, StoredCopy } from "./load.js";
import { short } from "./load.js";
import type { World } from "./world.js";

export interface Violation {
  invariant: "prefix" | "skip" | "located" | "complete" | "deadline" | "history" | "crash";
  detail: string;
}

function skippedNumbers(state: ChannelState): Map<number, string> {
  const set = new Map<number, string>();
  for (const r of state.skipped ?? []) for (let n = r.from; n <= r.to; n += 1) set.set(n, r.reason ?? "deadline");
  return set;
}

/**
 * The rocket cannot get past `lastApplied` because retention removed what it
 * needed: the lowest number stored above it has no copy left in the stream.
 */
function lostToRetention(world: World, load: Load, channel: string, lastApplied: number): boolean {
  const byNumber = load.copies.get(channel);
  let next: number | undefined;
  for (const n of byNumber?.keys() ?? []) if (n > lastApplied && (next === undefined || n < next)) next = n;
  if (next === undefined) return false;
  return byNumber!.get(next)!.every((c) => world.trimmedAt(c.seq) !== undefined);
}

function sameRocket(a: Rocket | null, b: Rocket | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The copies of `n` whose content the sequencer may have applied: the first
 * stored, and any stored before the first was acked (while it was still in
 * flight, to an instance that then crashed say, a later copy may be the one
 * the sequencer saw first). Once the first copy was acked, it is parked or
 * applied, and must win.
 */
function acceptableCopies(load: Load, world: World, channel: string, n: number, at: number): RocketMessage[] {
  const copies = load.copies.get(channel)?.get(n) ?? [];
  const first = copies[0];
  if (!first) return [];
  const firstAcked = world.acked.get(first.seq) ?? Number.POSITIVE_INFINITY;
  // Retention removed the first before this state: a later copy is all there was to apply.
  const firstGone = (world.trimmedAt(first.seq) ?? Number.POSITIVE_INFINITY) <= at;
  const out = [first.message];
  for (const c of copies.slice(1)) if ((c.at < firstAcked || firstGone) && JSON.stringify(c.message) !== JSON.stringify(first.message)) out.push(c.message);
  return out;
}

/** Whether some acceptable choice of copies folds to `rocket` through lastApplied (numbers in `skipped` left out). */
function foldMatches(
  load: Load,
  world: World,
  channel: string,
  lastApplied: number,
  skipped: ReadonlyMap<number, string>,
  rocket: Rocket | null,
  at: number,
): { ok: boolean; expected: Rocket | null; problem?: string } {
  const choices: RocketMessage[][] = [];
  for (let n = 1; n <= lastApplied; n += 1) {
    if (skipped.has(n)) continue;
    const copies = acceptableCopies(load, world, channel, n, at);
    if (copies.length === 0) return { ok: false, expected: null, problem: `applied #${n}, which was never stored` };
    choices.push(copies);
  }
  const fold = (pick: (i: number) => RocketMessage): Rocket | null => {
    let r: Rocket | null = null;
    for (let i = 0; i < choices.length; i += 1) r = apply(r, pick(i));
    return r;
  };
  let expected: Rocket | null;
  try {
    expected = fold((i) => choices[i]![0]!);
  } catch (err) {
    return { ok: false, expected: null, problem: `the first copies do not fold: ${(err as Error).message}` };
  }
  if (sameRocket(expected, rocket)) return { ok: true, expected };
  // Try the other acceptable copies (few: a number with a second copy stored while its first was in flight).
  const ambiguous = choices.map((c, i) => (c.length > 1 ? i : -1)).filter((i) => i >= 0).slice(0, 10);
  for (let mask = 1; mask < 1 << ambiguous.length; mask += 1) {
    const chosen = new Map<number, number>();
    ambiguous.forEach((i, bit) => chosen.set(i, (mask >> bit) & 1));
    try {
      if (sameRocket(fold((i) => choices[i]![chosen.get(i) ?? 0] ?? choices[i]![0]!), rocket)) return { ok: true, expected };
    } catch {
      // That choice does not fold; another may.
    }
  }
  return { ok: false, expected };
}

export function checkHistory(world: World, load: Load, skipAllowed: boolean): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    const { channel } = rocket;
    const records = world.history.get(channel) ?? [];
    // Skipped ranges can fall off a state's bounded record: the union over every write is what was ever given up.
    // A repair rebuilds from the stream alone: what was given up before it is not known to it.
    let everSkipped = new Map<number, string>();
    // What was given up before a rebuild: the rebuild does not know it, and neither does an instance that still holds
    // the channel's state from before the rebuild in memory (it takes late copies of those numbers as duplicates).
    const forgottenByRebuild = new Set<number>();
    let lastApplied = 0;
    for (const record of records) {
      if (record.state === "unreadable" || record.state === "quarantined" || record.state === null) {
        if (record.state === null && lastApplied > 0) {
          violations.push({ invariant: "prefix", detail: `${short(channel)}: a launched rocket's entry was removed at ${record.at} ms` });
        }
        continue;
      }
      const state = record.state;
      const rebuilt = record.by === "operator";
      if (rebuilt) {
        for (const n of everSkipped.keys()) forgottenByRebuild.add(n);
        everSkipped = new Map();
      } else if (state.lastApplied < lastApplied) {
        violations.push({ invariant: "prefix", detail: `${short(channel)}: lastApplied went back from ${lastApplied} to ${state.lastApplied} (revision ${record.revision} by ${record.by})` });
      }
      const before = new Map(everSkipped);
      for (const [n, reason] of skippedNumbers(state)) everSkipped.set(n, reason);
      for (const [n, reason] of everSkipped) {
        if (before.has(n) || forgottenByRebuild.has(n)) continue;
        if (reason === "deadline" && !skipAllowed) violations.push({ invariant: "skip", detail: `${short(channel)}: #${n} skipped under GAP_POLICY=wait` });
        for (const copy of load.copies.get(channel)?.get(n) ?? []) {
          const ackedAt = world.acked.get(copy.seq);
          if (ackedAt === undefined || ackedAt >= record.at) continue;
          // What the stream no longer held was lost to retention before the skip: recording it given up loses nothing more
          // (a gap whose parked messages all aged out forgets them, and a later deadline skip may name them).
          if ((world.trimmedAt(copy.seq) ?? Number.POSITIVE_INFINITY) <= record.at) continue;
          violations.push({
            invariant: "skip",
            detail: `${short(channel)}: #${n} (seq ${copy.seq}, acked at ${ackedAt.toFixed(0)} ms) given up (${reason}) by revision ${record.revision} at ${record.at.toFixed(0)} ms though it had arrived`,
          });
        }
      }
      const folded = foldMatches(load, world, channel, state.lastApplied, everSkipped, state.rocket, record.at);
      if (folded.problem !== undefined) {
        violations.push({ invariant: "prefix", detail: `${short(channel)}: revision ${record.revision}: ${folded.problem}` });
      } else if (!folded.ok) {
        violations.push({
          invariant: "prefix",
          detail: `${short(channel)}: revision ${record.revision} by ${record.by} at ${record.at.toFixed(0)} ms (lastApplied ${state.lastApplied}) holds ${JSON.stringify(state.rocket)}, the first copies fold to ${JSON.stringify(folded.expected)}`,
        });
      }
      lastApplied = rebuilt ? state.lastApplied : Math.max(lastApplied, state.lastApplied);
    }
  }
  return dedupe(violations);
}

function storedState(world: World, channel: string): ChannelState | null | "unreadable" {
  try {
    const entry = world.states.peek(channel);
    if (entry?.quarantine) return "unreadable";
    return entry?.state ?? null;
  } catch {
    return "unreadable";
  }
}

function everSkipped(world: World, channel: string): Set<number> {
  const skipped = new Set<number>();
  for (const r of world.history.get(channel) ?? []) if (r.state !== null && typeof r.state === "object") for (const n of skippedNumbers(r.state).keys()) skipped.add(n);
  return skipped;
}

export { lostToRetention };

/** A rebuild (npm run repair) reopened `n`: an earlier state had given it up, which the rebuild could not know. */
function reopenedByRebuild(world: World, channel: string, n: number): boolean {
  let skippedBefore = false;
  for (const r of world.history.get(channel) ?? []) {
    if (r.by === "operator") {
      if (skippedBefore) return true;
      continue;
    }
    if (r.state !== null && typeof r.state === "object" && skippedNumbers(r.state).has(n)) skippedBefore = true;
  }
  return false;
}

/** Every acked message is applied, given up by a skip, or held in the stream at or above its channel's gap.fromSeq. */
export function checkLocated(world: World, load: Load): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    const { channel } = rocket;
    const stored = storedState(world, channel);
    // A channel without an entry locates nothing: its launch reads back what it parked in the stream only (checked by completion).
    if (stored === "unreadable" || stored === null) continue;
    const lastApplied = stored.lastApplied;
    const byNumber = load.copies.get(channel) ?? new Map();
    for (const [n, copies] of byNumber) {
      for (const copy of copies) {
        if (!world.acked.has(copy.seq)) continue;
        if (n <= lastApplied) continue;
        const held = world.stream.get(copy.seq) !== undefined;
        // Retention removed it before it could be applied: lost, and the rocket shows it waits (documented).
        if (!held) continue;
        const fromSeq = stored.gap?.fromSeq ?? Number.POSITIVE_INFINITY;
        if (fromSeq > copy.seq) {
          violations.push({
            invariant: "located",
            detail: `${short(channel)}: #${n} (seq ${copy.seq}) was acked, is not applied (lastApplied ${lastApplied}) and lies below the stored gap.fromSeq ${String(stored.gap?.fromSeq ?? "none")}`,
          });
        }
      }
    }
  }
  return dedupe(violations);
}

/** Every rocket reached its last number (less what a skip gave up) and every consumer drained. */
export function checkComplete(world: World, load: Load): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    const { channel } = rocket;
    const stored = storedState(world, channel);
    if (stored === "unreadable") {
      violations.push({ invariant: "complete", detail: `${short(channel)}: its entry does not decode at the end` });
      continue;
    }
    const lastApplied = stored?.lastApplied ?? 0;
    const skipped = everSkipped(world, channel);
    const last = rocket.messages.length;
    if (lastApplied < last && !lostToRetention(world, load, channel, lastApplied) && !reopenedByRebuild(world, channel, lastApplied + 1)) {
      const missing: number[] = [];
      for (let n = lastApplied + 1; n <= last && missing.length < 5; n += 1) if (!skipped.has(n)) missing.push(n);
      violations.push({
        invariant: "complete",
        detail: `${short(channel)} (partition ${rocket.partition}) ended at lastApplied ${lastApplied} of ${last}; gap ${JSON.stringify(stored?.gap ?? null)}; waiting for ${missing.join(", ")}`,
      });
    }
  }
  for (const [partition, consumer] of world.consumers) {
    const { pending, ackPending } = consumer.position();
    if (pending > 0 || ackPending > 0) {
      violations.push({ invariant: "complete", detail: `partition ${partition}'s consumer did not drain: ${pending} undelivered, ${ackPending} unacknowledged (${consumer.pendingSeqs.slice(0, 5).join(", ")})` });
    }
  }
  return dedupe(violations);
}

/** Each violation once: the same invariant broken the same way is said once. */
export function dedupe(violations: Violation[]): Violation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const key = `${v.invariant}|${v.detail}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * The API's history of each rocket, folded from what the stream holds with
 * the rocket's skipped ranges (internal/domain/history.ts), ends in the state
 * the sequencer stored, and is complete. Left out: rockets retention cut,
 * rockets with a later copy the sequencer may legitimately have applied
 * (acceptableCopies), rockets that skipped more ranges than a state records,
 * and rockets a repair rebuilt.
 */
export function checkHistoryView(world: World, load: Load): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    const { channel } = rocket;
    const stored = storedState(world, channel);
    if (stored === null || stored === "unreadable" || stored.rocket === null) continue;
    const byNumber = load.copies.get(channel) ?? new Map<number, StoredCopy[]>();
    let plain = true;
    for (const [n, copies] of byNumber) {
      if (copies.some((c) => world.trimmedAt(c.seq) !== undefined)) plain = false;
      if (acceptableCopies(load, world, channel, n, Number.POSITIVE_INFINITY).length > 1) plain = false;
    }
    const records = world.history.get(channel) ?? [];
    if (records.some((r) => r.by === "operator")) plain = false;
    const ranges = new Set<string>();
    for (const r of records) if (r.state !== null && typeof r.state === "object") for (const x of r.state.skipped ?? []) ranges.add(`${x.from}-${x.to}`);
    if (ranges.size > MAX_SKIPPED_RECORDED) plain = false;
    if (!plain) continue;
    const messages: StoredMessage[] = [];
    for (const event of world.stream.from(world.stream.firstHeld)) {
      if (event.subject !== eventSubject(rocket.partition, channel)) continue;
      const decoded = decodeDelivery(rocket.partition, event.subject, event.data);
      if (!decoded.ok) continue;
      messages.push({ seq: event.seq, receivedAt: utcInstant(new Date(event.at).toISOString())!, message: decoded.message });
    }
    const folded = foldHistory(messages, stored.lastApplied, stored.skipped ?? []);
    const problems: string[] = [];
    if (!folded.complete) problems.push(`incomplete (missing ${JSON.stringify(folded.missing)})`);
    if (folded.state.lastApplied !== stored.lastApplied) problems.push(`folds to lastApplied ${folded.state.lastApplied}, the state has ${stored.lastApplied}`);
    if (!sameRocket(folded.state.rocket, stored.rocket)) problems.push(`folds to ${JSON.stringify(folded.state.rocket)}, the state has ${JSON.stringify(stored.rocket)}`);
    if (problems.length > 0) violations.push({ invariant: "history", detail: `${short(channel)}: the history ${problems.join("; ")}` });
  }
  return violations;
}
