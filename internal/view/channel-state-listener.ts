// The port through which the read side learns what the state bucket holds:
// a watcher (internal/nats/channel-state-watcher.ts) delivers every stored
// channel state, removal and unreadable entry to a listener (the API's
// ViewFeed), in the bucket's one order, with sync passes marked so that the
// view can drop what vanished while nobody watched.

import type { ChannelState } from "../domain/sequencing.js";
import type { StateDecodeError } from "../sequencer/channel-states.js";

export interface StateChange {
  /** KV revision of the entry (the bucket's stream sequence: one order for every watcher). */
  revision: number;
  /** When the server stored the entry. */
  writtenAt: Date;
  /** True while a sync pass is delivering the bucket's existing entries, false for live changes. */
  initial: boolean;
}

export interface ChannelStateListener {
  /** A pass over every channel in the bucket begins (at start and after each restart of the watch). */
  syncStarted(): void;
  /** The pass has delivered every channel the bucket held when it began. */
  syncDone(): void;
  stored(channel: string, state: ChannelState, change: StateChange): void;
  /** The channel's entry was deleted or purged. */
  removed(channel: string, change: StateChange): void;
  /** The entry holds something that is not a channel state; the watch goes on. */
  unreadable(channel: string, error: StateDecodeError, change: StateChange): void;
}
