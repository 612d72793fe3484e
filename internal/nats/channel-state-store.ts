// Rocket state in the KV bucket: one entry per channel, in the envelope of
// internal/sequencer/state-encoding.ts, keyed by the channel (encoded when
// it holds characters a key may not). Implements the sequencer's
// ChannelStates port: compare-and-set writes (RevisionConflictError), a full
// bucket as StateStoreFullError, and the start-up scan for never-launched
// channels.

import type { KV } from "@nats-io/kv";
import type { ChannelState } from "../domain/sequencing.js";
import { RevisionConflictError, StateDecodeError, StateStoreFullError, type ChannelStates, type StoredChannelState } from "../sequencer/channel-states.js";
import { decodeChannelState, encodeChannelState, startsWith, UNLAUNCHED_PREFIX } from "../sequencer/state-encoding.js";
import { isStoreFull, isWriteConflict } from "./jetstream-codes.js";

// KV keys allow [-/_=.A-Za-z0-9]; a channel may hold any other character that
// is safe in a subject token. Channels never contain '.', so the `b64.` form
// cannot collide with a channel stored as itself.
const PLAIN_KEY = /^[-_=A-Za-z0-9]+$/;
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
export class ChannelStateStore implements ChannelStates {
  constructor(private readonly kv: KV) {}

  /** The channel's current state and revision, or an empty state at revision 0. */
  async load(channel: string): Promise<StoredChannelState | null> {
    const entry = await this.kv.get(keyForChannel(channel));
    if (!entry || entry.operation !== "PUT") return null;
    return { state: decodeChannelState(entry.value, channel), revision: entry.revision };
  }

  /**
   * Writes `state` if the entry is still at `revision` (0: only if absent).
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
      return revision === 0 ? await this.kv.create(key, data) : await this.kv.update(key, data, revision);
    } catch (err) {
      if (isWriteConflict(err)) {
        throw new RevisionConflictError(channel, revision);
      }
      if (isStoreFull(err)) throw new StateStoreFullError(channel, { cause: err });
      throw err;
    }
  }

  /**
   * One pass over the bucket, handing over every channel whose entry has a
   * gap record but no launched rocket, with when its gap began (wall-clock
   * ms). Only such entries are parsed (they start with a known prefix); the
   * pass ends once the watch has caught up with the bucket, or on `signal`.
   * Lets a sequencer that starts find the never-launched channels an
   * instance before it recorded, and give them up on time.
   */
  async scanUnlaunched(onFound: (channel: string, since: number) => void, signal?: AbortSignal): Promise<void> {
    const { values } = await this.kv.status();
    if (values === 0 || signal?.aborted) return;
    const watch = await this.kv.watch();
    const stop = () => watch.stop();
    signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const entry of watch) {
        if (entry.operation === "PUT" && startsWith(entry.value, UNLAUNCHED_PREFIX)) {
          const channel = channelForKey(entry.key);
          try {
            const since = decodeChannelState(entry.value, channel).gap?.since;
            if (since !== undefined) onFound(channel, Date.parse(since));
          } catch (err) {
            // An invalid entry is reported when its channel is next read; the scan goes on.
            if (!(err instanceof StateDecodeError)) throw err;
          }
        }
        if (entry.delta === 0) break;
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      watch.stop();
    }
  }

  /**
   * Deletes the channel's entry if it is still at `revision` (a delete
   * marker, so watchers see it go); throws RevisionConflictError when
   * someone else wrote first.
   */
  async remove(channel: string, revision: number): Promise<void> {
    try {
      await this.kv.delete(keyForChannel(channel), { previousSeq: revision });
    } catch (err) {
      if (isWriteConflict(err)) throw new RevisionConflictError(channel, revision);
      throw err;
    }
  }
}
