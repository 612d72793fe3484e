// The port the channel actors keep their state through (ChannelStates),
// with what it promises and the errors it throws. internal/nats's
// ChannelStateStore implements it on the state bucket; the actor and registry
// depend on this module only.
//
// Every write names the revision it read (or creates when there was none), so
// two writers can never both succeed from the same starting point: the loser
// gets RevisionConflictError and must reload. This per-key compare-and-set is
// what keeps a message from being applied twice even while partition
// ownership moves between sequencer instances.

import type { Problem } from "../domain/message.js";
import type { ChannelState } from "../domain/sequencing.js";

export class RevisionConflictError extends Error {
  override name = "RevisionConflictError";
  constructor(readonly channel: string, readonly expectedRevision: number) {
    super(`channel ${channel} changed since revision ${expectedRevision}`);
  }
}

export class StateDecodeError extends Error {
  override name = "StateDecodeError";
  /** The entry's revision, when a store read it (what a quarantine replaces by compare-and-set). */
  revision: number | undefined;
  /** The entry's bytes, when a store read them (kept in the quarantine record). */
  raw: Uint8Array | undefined;
  constructor(
    message: string,
    /** What is wrong with the entry, by path (never quoting stored values). */
    readonly problems: readonly Problem[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** This error, as read from a store at `revision` holding `raw`. */
  at(revision: number, raw: Uint8Array): this {
    this.revision = revision;
    this.raw = raw;
    return this;
  }
}

/**
 * A channel whose entry did not decode is quarantined: the entry is replaced
 * (by compare-and-set, so nothing written since is lost) with this record,
 * which keeps the unreadable bytes for an operator and locates the messages
 * acknowledged since, so the partition goes on and nothing is lost while the
 * channel waits for its repair (`npm run repair`).
 */
export interface Quarantine {
  /** Every message of the channel acknowledged since the quarantine began lies at or above this stream sequence. */
  fromSeq: number;
  /** When the quarantine began (RFC 3339, UTC). */
  since: string;
  /** What was wrong with the entry it replaced. */
  problems: Problem[];
  /** The replaced entry's bytes, base64. */
  original: string;
}

/** The channel's entry is a quarantine record (for readers that only understand states). */
export class QuarantinedStateError extends StateDecodeError {
  override name = "QuarantinedStateError";
}

/** The store refused a write for lack of room (the bucket's max bytes, or the server's storage): nothing was written. */
export class StateStoreFullError extends Error {
  override name = "StateStoreFullError";
  constructor(readonly channel: string, options?: ErrorOptions) {
    super(`no room to store the state of channel ${channel}`, options);
  }
}

export interface StoredChannelState {
  state: ChannelState;
  /** KV revision the state was read at; 0 when the channel has no entry yet. */
  revision: number;
  /** Set when the entry is a quarantine record (state is then empty and not to be acted on). */
  quarantine?: Quarantine;
  /**
   * The entry was removed: the state is empty and `revision` is the delete
   * marker's, which the next write names (a write at revision 0 is refused
   * once the key was ever written, so an entry that came and went between a
   * read and a write is never written over).
   */
  deleted?: true;
  /** For a removed entry: from which stream sequence its messages were parked (absent: unknown, anywhere). */
  parkedFrom?: number;
}

/** A channel's gap as the state bucket records it, for the registry's reviews. */
export interface RecordedGap {
  /** When the gap was recorded (wall-clock ms). */
  since: number;
  /** Where its parked messages start in the stream (null: none parked there). */
  fromSeq: number | null;
  /** The channel has a launched rocket. */
  launched: boolean;
}

/** Channel state, written with an expected revision. */
export interface ChannelStates {
  /**
   * The channel's entry (a removed one as `deleted`), or null when its key
   * was never written. May be answered by a
   * replica that lags (a direct get): a stale answer only ever costs a
   * refused write, since every write names the revision it read. With
   * `latest`, read from the stream's leader: what a retry after a refused
   * write, and any decision not fenced by a write, must use. Throws
   * StateDecodeError (with the revision and bytes) when the entry does not decode.
   */
  load(channel: string, options?: { latest?: boolean }): Promise<StoredChannelState | null>;
  /**
   * Throws RevisionConflictError when the entry is no longer at `revision`
   * (0: the key must never have been written), StateStoreFullError when
   * there is no room.
   */
  save(channel: string, state: ChannelState, revision: number, encode: (state: ChannelState) => Uint8Array): Promise<number>;
  /** Replaces the entry, if still at `revision`, with a quarantine record; same errors as save. */
  quarantine(channel: string, record: Quarantine, revision: number): Promise<number>;
  /**
   * Deletes the entry if it is still at `revision`, its marker recording
   * `parkedFrom` (where the entry's parked messages start, for the channel's
   * next entry to read from); throws RevisionConflictError otherwise.
   */
  remove(channel: string, revision: number, parkedFrom?: number): Promise<void>;
  /** Hands over every channel whose entry records a gap, in one pass. */
  scanGaps?(onFound: (channel: string, gap: RecordedGap) => void, signal?: AbortSignal): Promise<void>;
}
