// An in-memory state bucket, faithful to the ChannelStates port
// (internal/sequencer/channel-states.ts) as internal/nats/channel-state-store.ts
// implements it on JetStream KV, so the channel actor and the registry can be
// unit-tested without a nats-server. The contract test
// (internal/sequencer/channel-states.contract.test.ts) runs the same cases
// against this and the real bucket.
//
// What it keeps from the real bucket:
// - Revisions grow across the whole bucket; every write, a delete included,
//   gets a new one. A save at revision 0 creates (only while the channel has
//   no entry or a deleted one); any other save, and every remove, lands only
//   while the entry is at exactly that revision (a delete marker's included):
//   otherwise RevisionConflictError, and nothing changes.
// - What is stored is the bytes `encode` made, decoded on every load by the
//   same decodeEntry: an entry that fails is a StateDecodeError carrying its
//   revision and bytes, and `putRaw` plants such an entry (a hand edit, an
//   older release); a quarantine record is handed back as one.
// - With `maxBytes`, a write that would take the bucket past it is refused
//   with StateStoreFullError and changes nothing, unless it replaces the
//   channel's entry with one no larger (the server lets those through: the
//   old message goes). Sizes are key + value + ENTRY_OVERHEAD, close to what
//   nats-server 2.15 counts (34 bytes of record, the `$KV.<bucket>.` subject
//   prefix and the expected-sequence header); the contract test holds the
//   two to the same outcomes with margins, not to the byte.
// - scanGaps hands over the same channels the real scan does.
//
// What it does not model: lag (every load is the latest, `latest` or not;
// the simulator models replicas), network failures, history beyond the
// latest entry, key encoding (any channel is its own key here).
//
// Every call takes a simulated round trip (round-trip.ts).

import type { ChannelState } from "../domain/sequencing.js";
import {
  RevisionConflictError,
  StateDecodeError,
  StateStoreFullError,
  type ChannelStates,
  type Quarantine,
  type RecordedGap,
  type StoredChannelState,
} from "../sequencer/channel-states.js";
import { decodeEntry, encodeChannelState, encodeQuarantine, recordedGapOf } from "../sequencer/state-encoding.js";
import { DEFAULT_LATENCY_MS, roundTrip } from "./round-trip.js";

/** Bytes one stored entry costs beyond its key and value (about what the server counts for a KV write). */
export const ENTRY_OVERHEAD = 100;
/** A delete marker's value-less entry costs about this much beyond its key. */
const DELETE_MARKER_OVERHEAD = 120;

interface Stored {
  /** null: a delete marker. */
  readonly value: Uint8Array | null;
  readonly revision: number;
  readonly size: number;
  /** A delete marker's record of where the removed entry's messages start. */
  readonly parkedFrom?: number;
}

export interface MemoryChannelStatesOptions {
  /** Most bytes the bucket holds (STATE_MAX_BYTES); unlimited when absent. */
  maxBytes?: number;
  /** Each call's simulated round trip. */
  latencyMs?: number;
}

export class MemoryChannelStates implements ChannelStates {
  private readonly entries = new Map<string, Stored>();
  private lastRevision = 0;
  private bytes = 0;

  private readonly latencyMs: number;

  constructor(private readonly options: MemoryChannelStatesOptions = {}) {
    this.latencyMs = options.latencyMs ?? DEFAULT_LATENCY_MS;
  }

  async load(channel: string, _options?: { latest?: boolean }): Promise<StoredChannelState | null> {
    await roundTrip(this.latencyMs);
    const entry = this.entries.get(channel);
    if (entry !== undefined && entry.value === null) {
      const removed: StoredChannelState = { state: { rocket: null, lastApplied: 0, pending: [] }, revision: entry.revision, deleted: true };
      if (entry.parkedFrom !== undefined) removed.parkedFrom = entry.parkedFrom;
      return removed;
    }
    return this.peek(channel);
  }

  async save(channel: string, state: ChannelState, revision: number, encode: (state: ChannelState) => Uint8Array = encodeChannelState): Promise<number> {
    const data = encode(state);
    await roundTrip(this.latencyMs);
    const current = this.entries.get(channel);
    const conflict = revision === 0 ? current !== undefined : current?.revision !== revision;
    if (conflict) throw new RevisionConflictError(channel, revision);
    return this.write(channel, Uint8Array.from(data), () => new StateStoreFullError(channel));
  }

  quarantine(channel: string, record: Quarantine, revision: number): Promise<number> {
    return this.save(channel, { rocket: null, lastApplied: 0, pending: [] }, revision, () => encodeQuarantine(record));
  }

  async remove(channel: string, revision: number, parkedFrom?: number): Promise<void> {
    await roundTrip(this.latencyMs);
    // Like KV delete with previousSeq: an entry never written counts as revision 0.
    if ((this.entries.get(channel)?.revision ?? 0) !== revision) throw new RevisionConflictError(channel, revision);
    this.write(channel, null, () => new StateStoreFullError(channel), parkedFrom);
  }

  async scanGaps(onFound: (channel: string, gap: RecordedGap) => void, signal?: AbortSignal): Promise<void> {
    await roundTrip(this.latencyMs);
    const inOrder = [...this.entries].sort(([, a], [, b]) => a.revision - b.revision);
    for (const [channel, entry] of inOrder) {
      if (signal?.aborted) return;
      if (entry.value === null) continue;
      const gap = recordedGapOf(entry.value, channel);
      if (gap !== undefined) onFound(channel, gap);
    }
  }

  /** What `load` would return now, without a round trip (for a test to look at the bucket between steps). */
  peek(channel: string): StoredChannelState | null {
    const entry = this.entries.get(channel);
    if (entry === undefined || entry.value === null) return null;
    try {
      const decoded = decodeEntry(entry.value, channel);
      if ("quarantine" in decoded) return { state: { rocket: null, lastApplied: 0, pending: [] }, revision: entry.revision, quarantine: decoded.quarantine };
      return { state: decoded.state, revision: entry.revision };
    } catch (err) {
      if (err instanceof StateDecodeError) throw err.at(entry.revision, entry.value);
      throw err;
    }
  }

  /** Stores `value` under the channel unconditionally, as a hand edit would; returns its revision. */
  putRaw(channel: string, value: Uint8Array | string): number {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : Uint8Array.from(value);
    return this.write(channel, bytes, () => new StateStoreFullError(channel));
  }

  /** The channel's latest revision (a delete marker's included), 0 when never written. */
  revisionOf(channel: string): number {
    return this.entries.get(channel)?.revision ?? 0;
  }

  /** Bytes the bucket holds, as counted against maxBytes. */
  get storedBytes(): number {
    return this.bytes;
  }

  private write(channel: string, value: Uint8Array | null, full: () => Error, parkedFrom?: number): number {
    const key = Buffer.byteLength(channel, "utf8");
    const size = value === null ? key + DELETE_MARKER_OVERHEAD : key + value.byteLength + ENTRY_OVERHEAD;
    const current = this.entries.get(channel);
    const { maxBytes } = this.options;
    if (maxBytes !== undefined && this.bytes + size > maxBytes && !(current !== undefined && current.size >= size)) throw full();
    this.bytes += size - (current?.size ?? 0);
    const revision = ++this.lastRevision;
    this.entries.set(channel, parkedFrom === undefined ? { value, revision, size } : { value, revision, size, parkedFrom });
    return revision;
  }
}
