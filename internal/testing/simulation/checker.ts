// What a run must have kept, checked against everything the world recorded:
// each copy the stream stored (every one was answered 2xx), every ack the
// consumers received, and every committed change of every state entry.
//
// The promise, as invariants:
// - prefix: every committed state of a channel is the in-order fold of the
//   first stored copy of each number 1..lastApplied, less the numbers its
//   skipped ranges gave up (applied once, in order, with its first content);
//   lastApplied never goes back.
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

import { apply, type Rocket } from "../../domain/rocket.js";
import type { ChannelState } from "../../domain/sequencing.js";
import type { Load } from "./load.js";
import { short } from "./load.js";
import type { World } from "./world.js";

export interface Violation {
  invariant: "prefix" | "skip" | "located" | "complete" | "deadline" | "crash";
  detail: string;
}

function skippedNumbers(state: ChannelState): Set<number> {
  const set = new Set<number>();
  for (const r of state.skipped ?? []) for (let n = r.from; n <= r.to; n += 1) set.add(n);
  return set;
}

function sameRocket(a: Rocket | null, b: Rocket | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function checkHistory(world: World, load: Load, skipAllowed: boolean): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    const { channel } = rocket;
    const records = world.history.get(channel) ?? [];
    // Skipped ranges can fall off a state's bounded record: the union over every write is what was ever given up.
    const everSkipped = new Set<number>();
    let lastApplied = 0;
    for (const record of records) {
      if (record.state === "unreadable" || record.state === null) {
        if (record.state === null && lastApplied > 0) {
          violations.push({ invariant: "prefix", detail: `${short(channel)}: a launched rocket's entry was removed at ${record.at} ms` });
        }
        continue;
      }
      const state = record.state;
      if (state.lastApplied < lastApplied) {
        violations.push({ invariant: "prefix", detail: `${short(channel)}: lastApplied went back from ${lastApplied} to ${state.lastApplied} (revision ${record.revision} by ${record.by})` });
      }
      const before = new Set(everSkipped);
      for (const n of skippedNumbers(state)) everSkipped.add(n);
      for (const n of everSkipped) {
        if (before.has(n)) continue;
        if (!skipAllowed) violations.push({ invariant: "skip", detail: `${short(channel)}: #${n} skipped under GAP_POLICY=wait` });
        for (const copy of load.copies.get(channel)?.get(n) ?? []) {
          const ackedAt = world.acked.get(copy.seq);
          if (ackedAt !== undefined && ackedAt < record.at) {
            violations.push({
              invariant: "skip",
              detail: `${short(channel)}: #${n} (seq ${copy.seq}, acked at ${ackedAt.toFixed(0)} ms) given up as never arrived by revision ${record.revision} at ${record.at.toFixed(0)} ms`,
            });
          }
        }
      }
      let expected: Rocket | null = null;
      let broken = false;
      for (let n = 1; n <= state.lastApplied && !broken; n += 1) {
        if (everSkipped.has(n)) continue;
        const copy = load.firstCopy(channel, n);
        if (!copy) {
          violations.push({ invariant: "prefix", detail: `${short(channel)}: revision ${record.revision} applied #${n}, which was never stored` });
          broken = true;
          break;
        }
        try {
          expected = apply(expected, copy.message);
        } catch (err) {
          violations.push({ invariant: "prefix", detail: `${short(channel)}: the first copies do not fold through #${n}: ${(err as Error).message}` });
          broken = true;
        }
      }
      if (!broken && !sameRocket(expected, state.rocket)) {
        violations.push({
          invariant: "prefix",
          detail: `${short(channel)}: revision ${record.revision} by ${record.by} at ${record.at.toFixed(0)} ms (lastApplied ${state.lastApplied}) holds ${JSON.stringify(state.rocket)}, the first copies fold to ${JSON.stringify(expected)}`,
        });
      }
      lastApplied = Math.max(lastApplied, state.lastApplied);
    }
  }
  return dedupe(violations);
}

function storedState(world: World, channel: string): ChannelState | null | "unreadable" {
  try {
    return world.states.peek(channel)?.state ?? null;
  } catch {
    return "unreadable";
  }
}

function everSkipped(world: World, channel: string): Set<number> {
  const skipped = new Set<number>();
  for (const r of world.history.get(channel) ?? []) if (r.state && r.state !== "unreadable") for (const n of skippedNumbers(r.state)) skipped.add(n);
  return skipped;
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
        const fromSeq = stored.gap?.fromSeq ?? Number.POSITIVE_INFINITY;
        if (!held || fromSeq > copy.seq) {
          violations.push({
            invariant: "located",
            detail: `${short(channel)}: #${n} (seq ${copy.seq}) was acked, is not applied (lastApplied ${lastApplied}) and ${held ? `lies below the stored gap.fromSeq ${String(stored.gap?.fromSeq ?? "none")}` : "is no longer in the stream"}`,
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
    if (lastApplied < last) {
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

function dedupe(violations: Violation[]): Violation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const key = `${v.invariant}|${v.detail}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
