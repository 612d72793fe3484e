// Rocket state in the KV bucket: one entry per channel, in the envelope of
// internal/sequencer/state-encoding.ts, keyed by the channel (encoded when
// it holds characters a key may not). Implements the sequencer's
// ChannelStates port: compare-and-set writes (RevisionConflictError), a full
// bucket as StateStoreFullError, quarantine records for entries that do not
// decode, loads from any replica or (`latest`) from the stream's leader, and
// the scan for recorded gaps.

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
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
import { decodeEntry, encodeChannelState, encodeQuarantine, QUARANTINE_PREFIX, recordedGapOf, startsWith } from "../sequencer/state-encoding.js";
import { isStoreFull, isWriteConflict } from "./jetstream-codes.js";
import { readFromLeader } from "./kv-leader-read.js";
import { STATE_BUCKET } from "./topology.js";

// KV keys allow [-/_=.A-Za-z0-9]; a channel may hold any other character that
// is safe in a subject token. Channels never contain '.', so the `b64.` form
// cannot collide with a channel stored as itself.
const PLAIN_KEY = /^[-_=A-Za-z0-9]+$/;
/** On a removed entry's delete marker: from which stream sequence the removed entry's messages were parked. */
const PARKED_FROM_HEADER = "Rockets-Parked-From";
const ENCODED_PREFIX = "b64.";

export function keyForChannel(channel: string): string {
  if (PLAIN_KEY.test(channel)) return channel;
  return ENCODED_PREFIX + Buffer.from(channel, "utf8").toString("base64url");
}

export function channelForKey(key: string): string {
  if (key.startsWith(ENCODED_PREFIX)) return Buffer.from(key.slice(ENCODED_PREFIX.length), "base64url").toString("utf8");
  return key;
}

/** The sequencer's ChannelStates port (internal/sequencer/channel-states.ts) on the state bucket. */
/**
 * What a writer of the bucket needs beyond the KV handle: the stream's leader
 * for `latest` loads, and a publish that creates a key only if it was never
 * written (KV's own create also replaces a deleted key, which would let a
 * writer that read "no entry" before an entry came and went write over what
 * that entry had located).
 */
export interface StateWriter {
  js: JetStreamClient;
  jsm: JetStreamManager;
  bucket?: string;
}

export class ChannelStateStore implements ChannelStates {
  private readonly bucket: string;

  /** Readers need only `kv`; the sequencer passes `writer` (docs/decisions/every-ack-has-a-write.md). */
  constructor(
    private readonly kv: KV,
    private readonly writer?: StateWriter,
  ) {
    this.bucket = writer?.bucket ?? STATE_BUCKET;
  }

  /** The channel's entry and revision; a deleted one as `deleted` at its marker's revision; null when never written. */
  async load(channel: string, options: { latest?: boolean } = {}): Promise<StoredChannelState | null> {
    const key = keyForChannel(channel);
    let value: Uint8Array | null;
    let revision: number;
    let parkedFrom: string | undefined;
    if (options.latest && this.writer) {
      const entry = await readFromLeader(this.writer.jsm, this.bucket, key);
      value = entry.value === null ? null : Buffer.from(entry.value, "utf8");
      revision = entry.revision;
      parkedFrom = entry.header(PARKED_FROM_HEADER);
    } else {
      const entry = await this.kv.get(key);
      if (!entry) return null;
      if (entry.operation !== "PUT" && this.writer) return this.load(channel, { latest: true });
      value = entry.operation === "PUT" ? entry.value : null;
      revision = entry.revision;
    }
    if (revision === 0) return null;
    if (value === null) {
      const from = Number(parkedFrom);
      const removed: StoredChannelState = { state: { rocket: null, lastApplied: 0, pending: [] }, revision, deleted: true };
      if (Number.isSafeInteger(from) && from >= 1) removed.parkedFrom = from;
      return removed;
    }
    return decoded(value, channel, revision);
  }

  /**
   * Writes `state` if the entry is still at `revision` (0: only if the key was never written; a deleted entry is
   * replaced at its marker's revision).
   * Returns the new revision; throws RevisionConflictError when someone else wrote first.
   * `encode` may be encodeChannelStateFrom bound to the writer's cache of message bytes.
   */
  async save(
    channel: string,
    state: ChannelState,
    revision: number,
    encode: (state: ChannelState) => Uint8Array = encodeChannelState,
  ): Promise<number> {
    const key = keyForChannel(channel);
    const data = encode(state);
    try {
      if (revision !== 0) return await this.kv.update(key, data, revision);
      if (!this.writer) return await this.kv.create(key, data);
      return (await this.writer.js.publish(`$KV.${this.bucket}.${key}`, data, { expect: { lastSubjectSequence: 0 } })).seq;
    } catch (err) {
      if (isWriteConflict(err)) {
        throw new RevisionConflictError(channel, revision);
      }
      if (isStoreFull(err)) throw new StateStoreFullError(channel, { cause: err });
      throw err;
    }
  }

  async quarantine(channel: string, record: Quarantine, revision: number): Promise<number> {
    return this.save(channel, { rocket: null, lastApplied: 0, pending: [] }, revision, () => encodeQuarantine(record));
  }

  /**
   * One pass over the bucket, handing over every channel whose entry records
   * a gap, with when it began, where its parked messages start and whether
   * the rocket launched. Only entries holding a gap record are parsed; the
   * pass ends once the watch has caught up with the bucket, or on `signal`.
   * Lets a sequencer that takes partitions find the gaps other instances
   * recorded there, and review them on time.
   */
  async scanGaps(onFound: (channel: string, gap: RecordedGap) => void, signal?: AbortSignal): Promise<void> {
    const { values } = await this.kv.status();
    if (values === 0 || signal?.aborted) return;
    const watch = await this.kv.watch();
    const stop = () => watch.stop();
    signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const entry of watch) {
        if (entry.operation === "PUT") {
          const channel = channelForKey(entry.key);
          const gap = recordedGapOf(entry.value, channel);
          if (gap !== undefined) onFound(channel, gap);
        }
        if (entry.delta === 0) break;
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      watch.stop();
    }
  }

  /** One pass over the bucket, handing over every quarantined channel's record. */
  async scanQuarantined(onFound: (channel: string, quarantine: Quarantine) => void): Promise<void> {
    const { values } = await this.kv.status();
    if (values === 0) return;
    const watch = await this.kv.watch();
    try {
      for await (const entry of watch) {
        if (entry.operation === "PUT" && startsWith(entry.value, QUARANTINE_PREFIX)) {
          const channel = channelForKey(entry.key);
          const decoded = decodeEntry(entry.value, channel);
          if ("quarantine" in decoded) onFound(channel, decoded.quarantine);
        }
        if (entry.delta === 0) break;
      }
    } finally {
      watch.stop();
    }
  }

  /**
   * Deletes the channel's entry if it is still at `revision` (a delete
   * marker, so watchers see it go, carrying `parkedFrom`); throws
   * RevisionConflictError when someone else wrote first.
   */
  async remove(channel: string, revision: number, parkedFrom?: number): Promise<void> {
    const key = keyForChannel(channel);
    try {
      if (!this.writer || parkedFrom === undefined) {
        await this.kv.delete(key, { previousSeq: revision });
        return;
      }
      // KV's own delete marker, with where the removed entry's messages start: the next entry of the channel reads from there.
      const h = headers();
      h.set("KV-Operation", "DEL");
      h.set(PARKED_FROM_HEADER, String(parkedFrom));
      await this.writer.js.publish(`$KV.${this.bucket}.${key}`, undefined, { headers: h, expect: { lastSubjectSequence: revision } });
    } catch (err) {
      if (isWriteConflict(err)) throw new RevisionConflictError(channel, revision);
      throw err;
    }
  }
}

function decoded(value: Uint8Array, channel: string, revision: number): StoredChannelState {
  try {
    const entry = decodeEntry(value, channel);
    if ("quarantine" in entry) return { state: { rocket: null, lastApplied: 0, pending: [] }, revision, quarantine: entry.quarantine };
    return { state: entry.state, revision };
  } catch (err) {
    if (err instanceof StateDecodeError) throw err.at(revision, value);
    throw err;
  }
}
