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
  constructor(
    message: string,
    /** What is wrong with the entry, by path (never quoting stored values). */
    readonly problems: readonly Problem[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
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
}

/** Channel state, written with an expected revision. */
export interface ChannelStates {
  load(channel: string): Promise<StoredChannelState | null>;
  /** Throws RevisionConflictError when the entry is no longer at `revision` (0: must not exist), StateStoreFullError when there is no room. */
  save(channel: string, state: ChannelState, revision: number, encode: (state: ChannelState) => Uint8Array): Promise<number>;
  /** Deletes the entry if it is still at `revision`; throws RevisionConflictError otherwise. */
  remove(channel: string, revision: number): Promise<void>;
  /** Hands over every channel with a gap record and no launch (when its gap began, wall-clock ms), in one pass. */
  scanUnlaunched?(onFound: (channel: string, since: number) => void, signal?: AbortSignal): Promise<void>;
}
