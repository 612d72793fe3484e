// Follows the state bucket: every channel's current state once (a sync pass),
// then every change as it is written, for as long as it runs, without a
// consumer. The API's NATS user may create none (deploy/nats/accounts.conf):
// whoever may create a push consumer may name any subject for its deliveries,
// a bucket's own subjects included.
//
// How:
// - The bucket republishes every entry it stores (the stream's `republish`,
//   done by its leader once the entry is committed) on `<changes>.<key>`,
//   with its stream sequence (`Nats-Sequence`), time and the entry's own
//   headers. The watcher subscribes there before anything else.
// - The sync pass reads the bucket from its first sequence to its last (as
//   the pass began) with batched direct gets, then its leader
//   (internal/nats/stream-forward-read.ts); live changes go on from there.
// - Every read from the bucket ends at a sequence known when it began (the
//   entry that revealed a hole, or the last one a probe saw): what was
//   written after is on its way as republished entries. A read that chased
//   the bucket's end would not end while writes came faster than the leader
//   answers one request (a flood of writes), and the view would stand still
//   behind it.
//
// Guarantees:
// - Entries reach the listener in the bucket's one order (stream sequence),
//   each once, with its revision: a republished entry is applied only when it
//   is the next sequence. One that comes after a hole (a republish lost to a
//   reconnect, a slow connection or a change of leader) first has the hole
//   read from the bucket, so what the listener sees is what a KV watch would
//   have delivered (entries since superseded are not read again, as a KV
//   watch would not deliver them either).
// - A lost last change, with nothing after it to reveal the hole, is found
//   by a probe of the bucket's last sequence at least every
//   `probeIntervalMs`, and at once after every reconnect.
// - A transient failure resumes from the next sequence, without a new sync
//   pass; a bucket deleted or created again (its creation time changes, or
//   its last sequence falls below what was delivered) gets a new sync pass,
//   so anything that left the bucket meanwhile is noticed by its absence
//   (the listener's syncStarted/syncDone bracket that pass).
// - A bucket created before it republished (a deployment from before) is
//   followed by the probes alone, and said so at start: `npm run topology --
//   upgrade` turns republishing on.
//
// No NATS type leaves this module: listeners get channels, decoded states and
// plain revision/time facts.

import type { JetStreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Status, Subscription } from "@nats-io/transport-node";
import type { ChannelState } from "../domain/sequencing.js";
import type { Logger } from "../observability/logger.js";
import { StateDecodeError } from "../sequencer/channel-states.js";
import type { ChannelStateListener, StateChange } from "../view/channel-state-listener.js";
import { decodeChannelState, startsWith, UNLAUNCHED_PREFIX } from "../sequencer/state-encoding.js";
import { channelForKey } from "./channel-state-store.js";
import { ReconnectBackoff } from "./connection.js";
import { isApiError, JetStreamApiCode } from "./jetstream-codes.js";
import { readForward, type StoredEntry } from "./stream-forward-read.js";

export interface WatchedBucket {
  bucket: string;
  /** Where the bucket republishes its entries: `<changes>.<key>` (topology.ts, STATE_CHANGES_PREFIX). */
  changes: string;
}

export interface ChannelStateWatcherSettings {
  /** Longest time without asking the bucket for its last sequence. */
  probeIntervalMs: number;
  /** Longest silence within one batch of a read before the bucket's leader takes over. */
  readTimeoutMs: number;
  /** The connection's inbox prefix: reads are answered there. */
  inboxPrefix?: string | undefined;
}

export const DEFAULT_WATCHER_SETTINGS: ChannelStateWatcherSettings = { probeIntervalMs: 1000, readTimeoutMs: 2000 };

/** Republished entries held while a read runs; past it they are dropped and read from the bucket instead. */
const MAX_ARRIVED = 10_000;

/** The header KV puts on deletes and purges; the server's TTL markers carry Nats-Marker-Reason instead. */
const KV_OPERATION = "KV-Operation";
const MARKER_REASON = "Nats-Marker-Reason";

/** The bucket is not the one the listener was synced with: a new sync pass is due. */
class BucketReplaced extends Error {
  override name = "BucketReplaced";
}

type Wake = "change" | "probe" | "stop";

export class ChannelStateWatcher {
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly backoff = new ReconnectBackoff();
  private readonly stream: string;
  private readonly keyPrefix: string;
  /** Republished entries not handled yet, in arrival order. */
  private readonly arrived: StoredEntry[] = [];
  private probeWanted = false;
  private wake: ((why: Wake) => void) | undefined;
  private sleeping: ReturnType<typeof setTimeout> | undefined;
  /** The next stream sequence the listener has not seen; 0 before the first sync pass. */
  private next = 0;
  /** The bucket's creation time at the last sync pass. */
  private created: string | undefined;
  private warnedNoRepublish = false;
  /** The bucket allows direct gets (any replica answers a read's batches). */
  private direct = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly watched: WatchedBucket,
    private readonly listener: ChannelStateListener,
    private readonly log: Logger,
    private readonly settings: ChannelStateWatcherSettings = DEFAULT_WATCHER_SETTINGS,
  ) {
    this.stream = `KV_${watched.bucket}`;
    this.keyPrefix = `$KV.${watched.bucket}.`;
  }

  /** Starts following the bucket in the background until stop(). */
  start(): void {
    if (this.running) return;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp("stop");
    await this.running;
  }

  private wakeUp(why: Wake): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.(why);
  }

  private async run(): Promise<void> {
    // Subscribed before the first read, so that no change can fall between the sync pass and the live ones.
    const changes: Subscription = this.nc.subscribe(`${this.watched.changes}.>`, {
      callback: (err, msg) => {
        if (err) return;
        const entry = republished(msg);
        if (entry === undefined) return;
        if (this.arrived.length >= MAX_ARRIVED) {
          // Nothing is lost: the next probe finds the bucket ahead and reads what these were.
          this.arrived.length = 0;
          this.probeWanted = true;
        }
        this.arrived.push(entry);
        this.wakeUp("change");
      },
    });
    // nats.js hands out a stoppable iterator (typed only as AsyncIterable); stopping it removes its listener.
    const statuses = this.nc.status() as AsyncIterable<Status> & { stop?: () => void };
    void (async () => {
      for await (const status of statuses) {
        if (status.type === "reconnect") {
          // Republished entries sent while disconnected are gone: the probe reads them from the bucket.
          this.probeWanted = true;
          this.wakeUp("probe");
        }
      }
    })();
    let synced = false;
    try {
      while (!this.stopping) {
        try {
          if (!synced) {
            await this.syncPass();
            synced = true;
          }
          await this.followLive();
        } catch (err) {
          if (this.stopping) break;
          if (err instanceof BucketReplaced) {
            this.log.warn({ bucket: this.watched.bucket }, `${err.message}; reading it again from the start`);
            synced = false;
            continue;
          }
          if (isApiError(err, JetStreamApiCode.StreamNotFound)) synced = false;
          this.log.warn({ err, bucket: this.watched.bucket }, "following the state bucket failed; going on from where it was");
          await this.pause(this.backoff.next());
        }
      }
    } finally {
      changes.unsubscribe();
      statuses.stop?.();
      clearTimeout(this.sleeping);
    }
  }

  /** Every entry the bucket holds, as one pass the listener can tell apart. */
  private async syncPass(): Promise<void> {
    const info = await this.jsm.streams.info(this.stream);
    if (!info.config.republish && !this.warnedNoRepublish) {
      this.warnedNoRepublish = true;
      this.log.warn(
        { bucket: this.watched.bucket, probeIntervalMs: this.settings.probeIntervalMs },
        "the state bucket does not republish its entries (created before it did): changes show here only when the bucket is asked; `npm run topology -- upgrade` turns republishing on",
      );
    }
    this.created = info.created;
    this.direct = info.config.allow_direct === true;
    this.next = Math.max(1, info.state.first_seq);
    this.listener.syncStarted();
    await this.readOn(true, info.state.last_seq);
    this.listener.syncDone();
    this.backoff.reset();
  }

  /** Applies republished entries in order, reading holes from the bucket, and probes it, until stop or a failure. */
  private async followLive(): Promise<void> {
    let probeAt = Date.now() + this.settings.probeIntervalMs;
    while (!this.stopping) {
      if (this.probeWanted || Date.now() >= probeAt) {
        this.probeWanted = false;
        await this.probe();
        probeAt = Date.now() + this.settings.probeIntervalMs;
        continue;
      }
      const entry = this.arrived.shift();
      if (entry === undefined) {
        await this.pause(probeAt - Date.now());
        continue;
      }
      if (entry.seq < this.next) continue;
      if (entry.seq === this.next) {
        this.deliver(entry, false);
        this.next = entry.seq + 1;
        continue;
      }
      // A hole before this entry: read it (and this entry, and whatever followed) from the bucket.
      this.log.debug({ bucket: this.watched.bucket, from: this.next, to: entry.seq }, "republished entries missed; reading them from the bucket");
      await this.readOn(false, entry.seq);
    }
  }

  /** Asks the bucket's leader for its last sequence; reads what was missed, or says the bucket was replaced. */
  private async probe(): Promise<void> {
    const info = await this.jsm.streams.info(this.stream);
    if (info.created !== this.created) throw new BucketReplaced(`bucket ${this.watched.bucket} was created again`);
    if (info.state.last_seq + 1 < this.next) throw new BucketReplaced(`bucket ${this.watched.bucket} holds less than was already delivered`);
    if (info.state.last_seq >= this.next) await this.readOn(false, info.state.last_seq);
  }

  /** Delivers every entry the bucket holds from `next` to `toSeq`, in order (the leader's word on what it holds). */
  private async readOn(initial: boolean, toSeq: number): Promise<void> {
    const { next } = await readForward(
      this.nc,
      this.jsm,
      {
        stream: this.stream,
        filter: `${this.keyPrefix}>`,
        fromSeq: this.next,
        toSeq,
        direct: this.direct,
        timeoutMs: this.settings.readTimeoutMs,
        inboxPrefix: this.settings.inboxPrefix,
      },
      (entry) => {
        if (entry.seq >= this.next) this.deliver(entry, initial);
      },
    );
    this.next = Math.max(this.next, next);
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.sleeping = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, Math.max(0, ms));
      this.wake = () => {
        clearTimeout(this.sleeping);
        resolve();
      };
    });
  }

  private deliver(entry: StoredEntry, initial: boolean): void {
    if (!entry.subject.startsWith(this.keyPrefix)) return;
    const channel = channelForKey(entry.subject.slice(this.keyPrefix.length));
    const change: StateChange = { revision: entry.seq, writtenAt: new Date(entry.timestamp), initial };
    const operation = entry.headers?.get(KV_OPERATION) ?? "";
    // A removed entry, or one with no launched rocket (the view shows neither): known from its first bytes, not decoded.
    // A flood of channels that never launch writes one such entry each; decoding them all would hold up real rockets behind them.
    if (operation !== "" || entry.headers?.has(MARKER_REASON) || startsWith(entry.data, UNLAUNCHED_PREFIX)) {
      this.listener.removed(channel, change);
      return;
    }
    let state: ChannelState;
    try {
      state = decodeChannelState(entry.data, channel);
    } catch (err) {
      if (!(err instanceof StateDecodeError)) throw err;
      this.listener.unreadable(channel, err, change);
      return;
    }
    this.listener.stored(channel, state, change);
  }
}

/** A republished entry as a stored one: its stream sequence, original subject and store time come as headers. */
function republished(msg: Msg): StoredEntry | undefined {
  const seq = Number(msg.headers?.get("Nats-Sequence"));
  const subject = msg.headers?.get("Nats-Subject");
  const timestamp = msg.headers?.get("Nats-Time-Stamp");
  if (!Number.isSafeInteger(seq) || seq < 1 || !subject || !timestamp) return undefined;
  return { seq, subject, timestamp, headers: msg.headers, data: msg.data };
}
