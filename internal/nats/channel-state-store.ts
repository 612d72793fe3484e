// Rocket state in the KV bucket: one entry per channel holding the whole
// ChannelState (rocket, last applied number, where the messages waiting
// behind a gap are parked in the stream, the ranges a gap policy skipped,
// and the inline messages a format-1 state still holds).
//
// Format 2 adds `gap` and `skipped`; format 1 (inline pending only) is still
// read, so states written before parking keep their buffered messages. A
// state's size no longer grows with its gap: buffering a message rewrites a
// constant-size entry, not a list of every message waiting.
//
// Every write names the revision it read (or creates when there was none), so
// two writers can never both succeed from the same starting point: the loser
// gets RevisionConflictError and must reload. This per-key compare-and-set is
// what keeps a message from being applied twice even while partition
// ownership moves between sequencer instances.
//
// What is read back is never trusted: decoding validates the whole state for
// its channel (validateChannelState: every buffered message by the rules that
// judged it at ingest), and an entry that fails is a StateDecodeError naming
// every problem, for the reader to report, never a state to act on.

import type { KV } from "@nats-io/kv";
import { validateChannelState } from "../domain/channel-state.js";
import type { ChannelState, ParkedGap, SkippedRange } from "../domain/sequencing.js";
import type { Problem, RocketMessage } from "../domain/message.js";
import type { Rocket } from "../domain/rocket.js";
import { isWriteConflict } from "./jetstream-codes.js";

export class RevisionConflictError extends Error {
  override name = "RevisionConflictError";
  constructor(readonly channel: string, readonly expectedRevision: number) {
    super(`channel ${channel} changed since revision ${expectedRevision}`);
  }
}

export class StateDecodeError extends Error {
  override name = "StateDecodeError";
  constructor(
    message: string,
    /** What is wrong with the entry, by path (never quoting stored values). */
    readonly problems: readonly Problem[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const FORMAT_VERSION = 2;
/** Formats decodeChannelState reads. */
const READABLE_FORMATS: ReadonlySet<unknown> = new Set([1, 2]);

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

interface StoredForm {
  v: number;
  rocket: Rocket | null;
  lastApplied: number;
  pending: RocketMessage[];
  gap?: ParkedGap | null;
  skipped?: SkippedRange[];
}

export function encodeChannelState(state: ChannelState): Uint8Array {
  return encodeChannelStateFrom(state, (m) => Buffer.from(JSON.stringify(m), "utf8"));
}

/** The fields after `pending`, as JSON text (empty when the state has neither). */
function tail(state: ChannelState): string {
  let text = "";
  if (state.gap !== undefined) text += `,"gap":${JSON.stringify(state.gap)}`;
  if (state.skipped !== undefined && state.skipped.length > 0) text += `,"skipped":${JSON.stringify(state.skipped)}`;
  return text;
}

/**
 * Encodes exactly like encodeChannelState (same bytes), but takes each
 * pending message's JSON from `messageJson`: a writer that keeps those bytes
 * from when the message arrived re-encodes only the rocket per write, not
 * every buffered message again.
 */
export function encodeChannelStateFrom(state: ChannelState, messageJson: (message: RocketMessage) => Uint8Array): Uint8Array {
  const head = Buffer.from(
    `{"v":${FORMAT_VERSION},"rocket":${JSON.stringify(state.rocket)},"lastApplied":${JSON.stringify(state.lastApplied)},"pending":[`,
    "utf8",
  );
  const chunks: Uint8Array[] = [head];
  let length = head.byteLength + 2;
  state.pending.forEach((message, i) => {
    if (i > 0) {
      chunks.push(COMMA);
      length += 1;
    }
    const json = messageJson(message);
    chunks.push(json);
    length += json.byteLength;
  });
  const close = Buffer.from(`]${tail(state)}}`, "utf8");
  chunks.push(close);
  return Buffer.concat(chunks, length - 2 + close.byteLength);
}

const COMMA = Buffer.from(",");
/** How every format-2 entry without a launched rocket begins (encodeChannelStateFrom writes the fields in this order). */
const UNLAUNCHED_PREFIX = Buffer.from(`{"v":${FORMAT_VERSION},"rocket":null,`, "utf8");

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i += 1) if (data[i] !== prefix[i]) return false;
  return true;
}

/** A log line names this many problems of an invalid state at most (the error carries them all). */
const MAX_PROBLEMS_SHOWN = 5;

/** The state stored for `channel`; throws StateDecodeError when it is not JSON, not our format, or not a valid state. */
export function decodeChannelState(data: Uint8Array, channel: string): ChannelState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch (err) {
    throw new StateDecodeError("channel state is not JSON", [], { cause: err });
  }
  const s = parsed as Partial<StoredForm> | null;
  if (typeof s !== "object" || s === null || Array.isArray(s) || !READABLE_FORMATS.has(s.v)) {
    const format = typeof s === "object" && s !== null ? String(s.v) : "none";
    throw new StateDecodeError(`channel state has an unknown shape (format ${format})`);
  }
  const v = validateChannelState(s, channel);
  if (!v.ok) {
    const shown = v.problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `${p.path || "(state)"} ${p.reason}`);
    if (v.problems.length > MAX_PROBLEMS_SHOWN) shown.push(`and ${v.problems.length - MAX_PROBLEMS_SHOWN} more`);
    const list = shown.join("; ");
    throw new StateDecodeError(`channel state is invalid: ${list}`, v.problems);
  }
  return v.value;
}

export interface StoredChannelState {
  state: ChannelState;
  /** KV revision the state was read at; 0 when the channel has no entry yet. */
  revision: number;
}

export class ChannelStateStore {
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
