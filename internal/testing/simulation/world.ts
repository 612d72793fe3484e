// The simulated NATS deployment the sequencer instances of a run share, and
// the network between it and each instance.
//
// The world holds the in-memory adapters the unit tests use, each held to
// JetStream by its contract test: the events stream (MemoryEventStream), one
// durable consumer per partition (MemoryPartitionConsumer), the state bucket
// (MemoryChannelStates) and the lease bucket (MemoryLeaseBucket). It records
// every committed state write and every settlement, for the checker.
//
// The network (Link) is what makes a run adversarial and still replayable:
// - Every request reaches the world after a drawn latency and runs there as
//   a world event; its answer reaches the instance after another, as an event
//   of the instance's own. A crashed instance's answers are dropped (its code
//   never runs again); a paused one's wait until it resumes. Each direction
//   of a link keeps its order (one TCP connection).
// - While a link is cut, requests fail after the request timeout without
//   reaching the world, and answers sent meanwhile are lost (the request then
//   fails by timeout although it took effect: the write that may or may not
//   have happened).
// - A state load may be answered by a lagging replica (`staleLoads`): the
//   entry as it was up to `replicaLagMs` ago, or no entry, as a direct get
//   may answer. Reads the ports promise to be the leader's are never stale.

import type { ChannelState } from "../../domain/sequencing.js";
import { partitionOf } from "../../domain/partition.js";
import { StateDecodeError, type ChannelStates, type RecordedGap, type StoredChannelState } from "../../sequencer/channel-states.js";
import type { BucketEntry, BucketWatch, LeaseStore } from "../../sequencer/lease-store.js";
import type { ConsumerPosition, ParkedSource, PartitionSource, StreamDelivery } from "../../sequencer/partition-worker.js";
import type { ParkedMessages } from "../../sequencer/channel-actor.js";
import { decodeChannelState, decodeEntry } from "../../sequencer/state-encoding.js";
import { MemoryChannelStates } from "../memory-channel-states.js";
import { MemoryEventStream, type StoredEvent } from "../memory-event-stream.js";
import { MemoryLeaseBucket, type MemoryLeaseClient } from "../memory-lease-store.js";
import { MemoryPartitionConsumer, type ConsumerSettings } from "../memory-partition-consumer.js";
import type { Sabotage } from "./options.js";
import type { SimRandom } from "./random.js";
import { WORLD, type Owner, type Scheduler } from "./scheduler.js";

export interface NetworkSettings {
  minLatencyMs: number;
  maxLatencyMs: number;
  /** A request that gets no answer fails after this long (the NATS client's request timeout). */
  timeoutMs: number;
  /** Chance that a state load is answered by a lagging replica. */
  staleLoads: number;
  /** How far behind a lagging replica may be. */
  replicaLagMs: number;
  /** Chance that an ack is lost on the way (the message then comes back after ack_wait). */
  lostAcks: number;
}

/** One committed change of a channel's entry, in commit order. */
export interface StateRecord {
  at: number;
  revision: number;
  /** null: deleted; "unreadable": bytes that do not decode (planted); "quarantined": a quarantine record. */
  state: ChannelState | null | "unreadable" | "quarantined";
  /** Who wrote it (an instance's owner id, or "world" for a planted entry). */
  by: Owner;
}

/** A request failed without an answer (the NATS client's TimeoutError, as the adapters rethrow it). */
export class SimTimeoutError extends Error {
  override name = "TimeoutError";
}

export class World {
  readonly stream = new MemoryEventStream(0);
  readonly states = new MemoryChannelStates({ latencyMs: 0 });
  readonly leases = new MemoryLeaseBucket();
  readonly consumers = new Map<number, MemoryPartitionConsumer>();
  /** Every committed change of every channel's entry. */
  readonly history = new Map<string, StateRecord[]>();
  /** Every ack the consumers received, by stream sequence: when. */
  readonly acked = new Map<number, number>();
  /** Retention's removals, in order: from `at` on, nothing below `firstHeld` is held. */
  readonly trims: Array<{ at: number; firstHeld: number }> = [];

  constructor(
    readonly scheduler: Scheduler,
    readonly random: SimRandom,
    readonly partitions: number,
    readonly network: NetworkSettings,
    consumer: ConsumerSettings,
    readonly sabotage?: Sabotage,
  ) {
    for (let p = 0; p < partitions; p += 1) this.consumers.set(p, new MemoryPartitionConsumer(this.stream, p, consumer));
    this.stream.listen((change) => {
      if (change.trimmedBefore !== undefined) this.trims.push({ at: scheduler.now, firstHeld: change.trimmedBefore });
    });
  }

  /** When retention removed `seq`, or undefined while it is held. */
  trimmedAt(seq: number): number | undefined {
    for (const t of this.trims) if (t.firstHeld > seq) return t.at;
    return undefined;
  }

  partitionOf(channel: string): number {
    return partitionOf(channel, this.partitions);
  }

  latency(): number {
    const { minLatencyMs, maxLatencyMs } = this.network;
    return minLatencyMs + this.random.next() * (maxLatencyMs - minLatencyMs);
  }

  /** Told of every settlement a consumer received, and of deliveries (a trace). */
  onConsumer: ((owner: Owner, what: string, seq: number) => void) | undefined;

  /** Told of every committed change (a trace). */
  onRecord: ((channel: string, record: StateRecord) => void) | undefined;

  record(channel: string, revision: number, state: StateRecord["state"], by: Owner): void {
    let list = this.history.get(channel);
    if (!list) this.history.set(channel, (list = []));
    const record = { at: this.scheduler.now, revision, state, by };
    list.push(record);
    this.onRecord?.(channel, record);
  }

  /** The channel's entry as a replica `lagMs` behind the leader holds it. */
  entryAsOf(channel: string, at: number): StoredChannelState | null | "unreadable" {
    const list = this.history.get(channel);
    if (!list) return null;
    let found: StateRecord | undefined;
    for (const r of list) {
      if (r.at > at) break;
      found = r;
    }
    if (!found) return null;
    if (found.state === null) return { state: { rocket: null, lastApplied: 0, pending: [] }, revision: found.revision, deleted: true };
    if (found.state === "unreadable" || found.state === "quarantined") return "unreadable";
    return { state: found.state, revision: found.revision };
  }

  /** Plants bytes that do not decode as the channel's entry (a hand edit, a bug elsewhere). */
  plantUnreadable(channel: string): void {
    const revision = this.states.putRaw(channel, "{\"v\":2,\"lastApplied\":\"garbage\"}");
    this.record(channel, revision, "unreadable", WORLD);
  }

  /** The state bucket and the stream as an operator's tool on the world sees them (writes recorded as `by`). */
  operatorPorts(by: Owner): { store: ChannelStates; parked: ParkedMessages } {
    const store = this.states;
    return {
      store: {
        load: (channel, options) => store.load(channel, options),
        save: async (channel, state, revision, encode) => {
          const next = await store.save(channel, state, revision, encode);
          this.record(channel, next, state, by);
          return next;
        },
        quarantine: async (channel, record, revision) => {
          const next = await store.quarantine(channel, record, revision);
          this.record(channel, next, "quarantined", by);
          return next;
        },
        remove: async (channel, revision, parkedFrom) => {
          await store.remove(channel, revision, parkedFrom);
          this.record(channel, store.revisionOf(channel), null, by);
        },
      },
      parked: this.stream.parked(),
    };
  }

  /** A network link of one instance incarnation. */
  link(owner: Owner): Link {
    return new Link(this, owner);
  }
}

/** One instance incarnation's connection to the world. */
export class Link {
  private cutUntil = Number.NEGATIVE_INFINITY;
  private lastUp = 0;
  private lastDown = 0;
  readonly leaseClient: MemoryLeaseClient;

  constructor(
    readonly world: World,
    readonly owner: Owner,
  ) {
    this.leaseClient = world.leases.connect();
  }

  private get scheduler(): Scheduler {
    return this.world.scheduler;
  }

  /** Cuts the link for `ms`. */
  cut(ms: number): void {
    this.cutUntil = Math.max(this.cutUntil, this.scheduler.now + ms);
  }

  get isCut(): boolean {
    return this.scheduler.now < this.cutUntil;
  }

  /** The instance crashed: its lease client closes (its watches end), nothing reaches it again. */
  close(): void {
    this.leaseClient.close();
  }

  /** Runs `fn` in the world after the way up, in order with this link's other traffic. */
  up(fn: () => void): void {
    const at = Math.max(this.lastUp, this.scheduler.now + this.world.latency());
    this.lastUp = at;
    this.scheduler.schedule(WORLD, at - this.scheduler.now, fn);
  }

  /** Runs `fn` in the instance after the way down, in order with this link's other traffic; lost while the link is cut. */
  down(fn: () => void, lost?: () => void): void {
    if (this.isCut) {
      lost?.();
      return;
    }
    const at = Math.max(this.lastDown, this.scheduler.now + this.world.latency());
    this.lastDown = at;
    this.scheduler.schedule(this.owner, at - this.scheduler.now, fn);
  }

  /** A request and its answer. */
  request<T>(op: () => Promise<T> | T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const sentAt = this.scheduler.now;
      const timeout = () => {
        const wait = Math.max(0, sentAt + this.world.network.timeoutMs - this.scheduler.now);
        this.scheduler.schedule(this.owner, wait, () => reject(new SimTimeoutError("request timed out")));
      };
      if (this.isCut) {
        timeout();
        return;
      }
      this.up(() => {
        let result: Promise<T>;
        try {
          result = Promise.resolve(op());
        } catch (err) {
          result = Promise.reject(err);
        }
        result.then(
          (value) => this.down(() => resolve(value), timeout),
          (err: unknown) => this.down(() => reject(err), timeout),
        );
      });
    });
  }

  /** A message with no answer (an ack). */
  send(fn: () => void): void {
    if (this.isCut) return;
    this.up(fn);
  }

  // The ports, as this instance sees them over this link.

  channelStates(): ChannelStates {
    const { world } = this;
    const store = world.states;
    const request = <T>(op: () => Promise<T>) => this.request(op);
    const owner = this.owner;
    return {
      load(channel, options) {
        return request(async () => {
          if (!options?.latest && world.random.chance(world.network.staleLoads)) {
            const stale = world.entryAsOf(channel, world.scheduler.now - world.random.next() * world.network.replicaLagMs);
            if (stale === "unreadable") return store.load(channel);
            return stale;
          }
          return store.load(channel);
        });
      },
      save(channel, state, revision, encode) {
        const bytes = encode(sabotaged(state, world.sabotage));
        return request(async () => {
          const next = await store.save(channel, state, revision, () => bytes);
          world.record(channel, next, decodeChannelState(bytes, channel), owner);
          return next;
        });
      },
      quarantine(channel, record, revision) {
        return request(async () => {
          const next = await store.quarantine(channel, record, revision);
          world.record(channel, next, "quarantined", owner);
          return next;
        });
      },
      remove(channel, revision, parkedFrom) {
        return request(async () => {
          await store.remove(channel, revision, parkedFrom);
          world.record(channel, store.revisionOf(channel), null, owner);
        });
      },
      scanGaps(onFound, signal) {
        return request(async () => {
          const found: Array<[string, RecordedGap]> = [];
          await store.scanGaps((channel, gap) => found.push([channel, gap]));
          return found;
        }).then((found) => {
          for (const [channel, gap] of found) {
            if (signal?.aborted) return;
            onFound(channel, gap);
          }
        });
      },
    };
  }

  parkedSource(): ParkedSource {
    const { stream } = this.world;
    return {
      read: (partition, channel, fromSeq, onMessage, throughSeq) =>
        this.request(async () => {
          const found: StoredEvent[] = [];
          await stream.read(partition, channel, fromSeq, (m) => found.push(m), throughSeq);
          return found;
        }).then((found) => {
          for (const m of found) onMessage(m);
          return { read: found.length };
        }),
      census: (partition, channel) => this.request(() => stream.census(partition, channel)),
      held: () => this.request(() => stream.held()),
      firstSeq: (partition, channel, fromSeq) => this.request(() => stream.firstSeq(partition, channel, fromSeq)),
    };
  }

  leaseStore(): LeaseStore {
    const client = this.leaseClient;
    return {
      create: (key, value) => this.request(() => client.create(key, value)),
      update: (key, value, revision) => this.request(() => client.update(key, value, revision)),
      put: (key, value, ttlMs) => this.request(() => client.put(key, value, ttlMs)),
      delete: (key, revision) => this.request(() => client.delete(key, revision)),
      read: (key) => this.request(() => client.read(key)),
      watch: (onEntry) => this.watch(onEntry),
    };
  }

  private async watch(onEntry: (entry: BucketEntry) => void): Promise<BucketWatch> {
    let stopped = false;
    let caughtUp!: () => void;
    let ended!: () => void;
    const caughtUpP = new Promise<void>((r) => (caughtUp = r));
    const endedP = new Promise<void>((r) => (ended = r));
    const inner = await this.request(() =>
      this.leaseClient.watch((entry) => {
        this.down(() => {
          if (!stopped) onEntry(entry);
        });
      }),
    );
    void inner.caughtUp.then(() => this.down(() => caughtUp()));
    void inner.ended.then(() => {
      // The client's watch ends with the connection: the instance hears of it (if it still runs).
      this.scheduler.schedule(this.owner, 0, () => ended());
    });
    return {
      caughtUp: caughtUpP,
      ended: endedP,
      stop: () => {
        stopped = true;
        this.send(() => inner.stop());
        ended();
      },
    };
  }

  partitionSource(partition: number): PartitionSource {
    const consumer = this.world.consumers.get(partition)!;
    return {
      fetch: (maxMessages, expiresMs, onMessage) =>
        new Promise<void>((resolve, reject) => {
          const sentAt = this.scheduler.now;
          const fail = () => {
            const wait = Math.max(0, sentAt + expiresMs + this.world.network.timeoutMs - this.scheduler.now);
            this.scheduler.schedule(this.owner, wait, () => reject(new SimTimeoutError("pull request failed")));
          };
          if (this.isCut) {
            fail();
            return;
          }
          let failed = false;
          this.up(() =>
            consumer.pull(
              maxMessages,
              expiresMs,
              (m) =>
                this.down(
                  () => {
                    this.world.onConsumer?.(this.owner, "delivered", m.seq);
                    if (!failed) onMessage(this.delivery(partition, m.seq, m.subject, m.data, m.pending));
                  },
                  () => {
                    // Lost on the way: the message comes back after ack_wait; the pull fails.
                    if (!failed) fail();
                    failed = true;
                  },
                ),
              () =>
                this.down(
                  () => {
                    if (!failed) resolve();
                  },
                  () => {
                    if (!failed) fail();
                    failed = true;
                  },
                ),
            ),
          );
        }),
      position: () => this.request((): ConsumerPosition => consumer.position()),
      reset: () => undefined,
    };
  }

  private delivery(partition: number, seq: number, subject: string, data: Uint8Array, pending: number): StreamDelivery {
    const consumer = this.world.consumers.get(partition)!;
    const world = this.world;
    return {
      subject,
      seq,
      data,
      info: { pending },
      ack: () => {
        if (world.random.chance(world.network.lostAcks)) return;
        this.send(() => {
          world.onConsumer?.(this.owner, consumer.isPending(seq) ? "ack" : "ack (not pending)", seq);
          if (consumer.isPending(seq) && !world.acked.has(seq)) world.acked.set(seq, world.scheduler.now);
          consumer.ack(seq);
        });
      },
      nak: (delayMs) =>
        this.send(() => {
          world.onConsumer?.(this.owner, `nak ${delayMs ?? 0} ms`, seq);
          consumer.nak(seq, delayMs);
        }),
      term: () =>
        this.send(() => {
          world.onConsumer?.(this.owner, "term", seq);
          consumer.term(seq);
        }),
    };
  }
}

/** The state as a deliberately broken store would write it (the checker's own tests). */
function sabotaged(state: ChannelState, sabotage: Sabotage | undefined): ChannelState {
  if (sabotage === "unlocate" && state.gap?.fromSeq != null) return { ...state, gap: { ...state.gap, fromSeq: state.gap.fromSeq + 1 } };
  if (sabotage === "corrupt" && state.rocket !== null) return { ...state, rocket: { ...state.rocket, speed: state.rocket.speed + 1 } };
  return state;
}

/** Decodes what a planted or written entry holds, for reports. */
export function describeEntry(bytes: Uint8Array, channel: string): string {
  try {
    return JSON.stringify(decodeEntry(bytes, channel));
  } catch (err) {
    if (err instanceof StateDecodeError) return `unreadable (${err.message})`;
    throw err;
  }
}
