// Repairing a quarantined channel (or one whose entry does not decode): its
// state rebuilt from the events stream, the log every state is a fold of.
//
// Guarantees:
// - The rebuilt state is the fold, with the sequencer's own sequencing, of
//   every message the stream holds for the channel (each number's first
//   stored copy), and the messages waiting behind a gap are located by it
//   (gap.fromSeq at or below each): nothing acked is lost by the repair.
// - It is written by compare-and-set at the revision it read: the sequencer
//   writes the quarantine record for every batch it acks meanwhile, so a
//   repair that raced one is refused and starts over.
// - A channel whose history the stream's retention may have cut (the stream
//   no longer starts at sequence 1) is rebuilt only when asked to (`force`):
//   what retention removed is then missing from the rebuilt state.

import type { RocketMessage } from "../domain/message.js";
import { sequenceBatch } from "../domain/sequence-batch.js";
import { emptyChannelState, type ChannelState } from "../domain/sequencing.js";
import type { ParkedMessages } from "./channel-actor.js";
import { RevisionConflictError, StateDecodeError, type ChannelStates, type Quarantine } from "./channel-states.js";
import { encodeChannelState } from "./state-encoding.js";

export type RepairOutcome =
  /** The entry decodes and is not quarantined: nothing to repair. */
  | { kind: "healthy" }
  /** The channel has no entry. */
  | { kind: "absent" }
  /** The stream no longer starts at sequence 1: rebuilt only with `force`. */
  | { kind: "history-cut"; firstSeq: number }
  | { kind: "repaired"; state: ChannelState; revision: number; messages: number; quarantine: Quarantine | undefined; attempts: number };

export interface RepairOptions {
  force?: boolean;
  /** Compare-and-set attempts before giving up (each after a write of the sequencer's). */
  attempts?: number;
  wallNow?: () => number;
}

export class RepairRacedError extends Error {
  override name = "RepairRacedError";
}

export async function repairChannel(
  channel: string,
  partition: number,
  store: ChannelStates,
  stream: ParkedMessages,
  options: RepairOptions = {},
): Promise<RepairOutcome> {
  const attempts = options.attempts ?? 10;
  const wallNow = options.wallNow ?? Date.now;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    let revision: number;
    let quarantine: Quarantine | undefined;
    try {
      const entry = await store.load(channel, { latest: true });
      if (entry === null || entry.deleted) return { kind: "absent" };
      if (entry.quarantine === undefined) return { kind: "healthy" };
      revision = entry.revision;
      quarantine = entry.quarantine;
    } catch (err) {
      if (!(err instanceof StateDecodeError) || err.revision === undefined) throw err;
      revision = err.revision;
    }
    const { firstSeq } = await stream.held();
    if (firstSeq > 1 && !options.force) return { kind: "history-cut", firstSeq };
    const messages: Array<{ seq: number; message: RocketMessage }> = [];
    await stream.read(partition, channel, 1, (seq, message) => messages.push({ seq, message }));
    const state = rebuild(messages, wallNow());
    try {
      const next = await store.save(channel, state, revision, encodeChannelState);
      return { kind: "repaired", state, revision: next, messages: messages.length, quarantine, attempts: attempt };
    } catch (err) {
      if (!(err instanceof RevisionConflictError)) throw err;
    }
  }
  throw new RepairRacedError(`channel ${channel} was written ${attempts} times while it was being repaired; try again`);
}

/** The fold of a channel's stored messages (stream order), its waiting messages located by their lowest sequence. */
export function rebuild(messages: ReadonlyArray<{ seq: number; message: RocketMessage }>, now: number): ChannelState {
  const result = sequenceBatch(
    emptyChannelState(),
    messages.map((m) => m.message),
    { maxPending: Number.POSITIVE_INFINITY },
  );
  const state: ChannelState = { rocket: result.state.rocket, lastApplied: result.state.lastApplied, pending: [] };
  const waiting = new Set(result.state.pending.map((m) => m.metadata.messageNumber));
  let fromSeq = Number.POSITIVE_INFINITY;
  for (const { seq, message } of messages) if (waiting.has(message.metadata.messageNumber)) fromSeq = Math.min(fromSeq, seq);
  if (waiting.size > 0) state.gap = { fromSeq, parked: waiting.size, since: new Date(now).toISOString() };
  return state;
}
