// Follows the state bucket: every channel's current state once (a sync pass),
// then every change as it is written, for as long as it runs.
//
// The KV watch rides an ordered push consumer that already survives
// reconnects, missed heartbeats and a lost consumer by recreating itself at
// the next stream sequence. If the watch still ends (its consumer could not
// be recreated, the bucket was deleted) it is restarted from scratch with a
// fresh sync pass, so anything that left the bucket meanwhile is noticed by
// its absence (the listener's syncStarted/syncDone bracket that pass).
//
// No NATS type leaves this module: listeners get channels, decoded states and
// plain revision/time facts.

import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { ChannelState } from "../domain/sequencing.js";
import type { Logger } from "../observability/logger.js";
import { StateDecodeError } from "../sequencer/channel-states.js";
import type { ChannelStateListener, StateChange } from "../view/channel-state-listener.js";
import { decodeChannelState } from "../sequencer/state-encoding.js";
import { channelForKey } from "./channel-state-store.js";
import { ReconnectBackoff } from "./connection.js";

export class ChannelStateWatcher {
  private running: Promise<void> | undefined;
  private stopping = false;
  private stopWatch: (() => void) | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly backoff = new ReconnectBackoff();

  constructor(
    private readonly kv: KV,
    private readonly listener: ChannelStateListener,
    private readonly log: Logger,
  ) {}

  /** Starts following the bucket in the background; restarts the watch whenever it ends until stop(). */
  start(): void {
    if (this.running) return;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopWatch?.();
    this.wakeUp?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.watchOnce();
        if (!this.stopping) this.log.warn("state bucket watch ended; restarting it");
      } catch (err) {
        if (!this.stopping) this.log.warn({ err }, "state bucket watch failed; restarting it");
      }
      if (this.stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.backoff.next());
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async watchOnce(): Promise<void> {
    // Read before the watch starts: when the bucket holds nothing, no entry
    // will ever say the pass is over, and an empty view is the true state.
    const { values } = await this.kv.status();
    const watch = await this.kv.watch();
    this.stopWatch = () => watch.stop();
    if (this.stopping) {
      watch.stop();
      return;
    }
    let syncing = true;
    this.listener.syncStarted();
    if (values === 0) {
      syncing = false;
      this.listener.syncDone();
    }
    for await (const entry of watch) {
      this.deliver(entry, syncing);
      // `delta` is how many entries the server still had queued behind this
      // one: zero means this watcher has caught up with the bucket.
      if (syncing && entry.delta === 0) {
        syncing = false;
        this.backoff.reset();
        this.listener.syncDone();
      }
    }
  }

  private deliver(entry: KvWatchEntry, initial: boolean): void {
    const channel = channelForKey(entry.key);
    const change: StateChange = { revision: entry.revision, writtenAt: entry.created, initial };
    if (entry.operation !== "PUT") {
      this.listener.removed(channel, change);
      return;
    }
    let state: ChannelState;
    try {
      state = decodeChannelState(entry.value, channel);
    } catch (err) {
      if (!(err instanceof StateDecodeError)) throw err;
      this.listener.unreadable(channel, err, change);
      return;
    }
    this.listener.stored(channel, state, change);
  }
}
