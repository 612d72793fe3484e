// Pulls one owned partition's messages and hands them to the channel actors.
//
// Guarantees:
// - At most `maxInFlight` messages of the partition are with the actors and
//   not yet settled: each fetch asks only for the room left, so memory stays
//   bounded and a slow KV simply slows the pulling (back-pressure).
// - A message that is not JSON, fails validation, or sits on a subject that
//   does not match its channel is terminated, logged and counted as
//   rejected: it can never become valid and must not block the partition.
// - Every fetch runs to its end (a message arriving after we stop listening
//   would only come back after ack_wait). Releasing keeps handling what
//   arrives and lets the actors finish; losing the partition naks whatever
//   still arrives, with a delay that outlasts our open fetch, so the next
//   owner gets it.
// - A failed pull is retried after retryDelayMs. Failures that recover by
//   themselves are counted and logged at DEBUG; only an outage that lasts
//   is a warning (FetchOutage).

import { Buffer } from "node:buffer";
import { validateMessage, type Problem, type RocketMessage } from "../domain/message.js";
import { eventSubject } from "../domain/partition.js";
import type { Logger } from "../observability/logger.js";
import type { ActorRegistry } from "./actor-registry.js";
import { keepJsonSize, type Delivery, type ParkedMessages } from "./channel-actor.js";
import { FetchOutage } from "./fetch-outage.js";
import { DeliveryOutcome, type SequencerMetrics } from "./metrics.js";

/** One message delivered by the partition's consumer (implemented by internal/nats/partition-consumer.ts). */
export interface StreamDelivery {
  readonly subject: string;
  /** The message's sequence in the events stream: where it can be read back while it is parked. */
  readonly seq: number;
  readonly data: Uint8Array;
  /** `pending`: the partition's undelivered messages when this one was sent (the lag, for free). */
  readonly info: { readonly pending: number };
  ack(): void;
  /** Hands the message back for redelivery, after `delayMs` when given. */
  nak(delayMs?: number): void;
  /** Never redeliver this message. (No reason: 2.9 ignores a "+TERM <reason>" ack.) */
  term(): void;
}

export interface ConsumerPosition {
  /** Messages in the partition not yet delivered to anyone: the consumer's lag. */
  pending: number;
  /** Messages delivered and not yet acknowledged. */
  ackPending: number;
  /** The last stream sequence delivered to anyone (0: none yet). */
  deliveredThrough: number;
}

/** The partition's durable consumer (PartitionConsumer). */
export interface PartitionSource {
  fetch(maxMessages: number, expiresMs: number, onMessage: (delivery: StreamDelivery) => void): Promise<void>;
  /** Creates the consumer first when it is missing. */
  position(): Promise<ConsumerPosition>;
  reset(): void;
}

export interface WorkerSettings {
  fetchBatch: number;
  fetchExpiresMs: number;
  /** Most of this partition's messages with the actors, unsettled. */
  maxInFlight: number;
  /** Pause after a failed fetch. */
  retryDelayMs: number;
}

/** How many fetch expiries a release waits for the current fetch to end. */
const FETCH_PATIENCE = 5;

const WorkerState = { Running: "running", Releasing: "releasing", Lost: "lost" } as const;
type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

type Decoded = { ok: true; message: RocketMessage } | { ok: false; problems: Problem[] };

function keyCount(value: unknown): number {
  let n = 0;
  for (const _ in value as object) n += 1;
  return n;
}

/**
 * True when the parsed document holds exactly the validated message's
 * fields: then its text parses to exactly the message, and its length is the
 * message's JSON size without encoding it again. (Text the UTF-8 decoder had
 * to repair is never counted so: the repair changes its length.)
 */
function isExactly(parsed: unknown, message: RocketMessage, text: string): boolean {
  const doc = parsed as { metadata: unknown; message: unknown };
  return (
    keyCount(doc) === 2 &&
    keyCount(doc.metadata) === 4 &&
    keyCount(doc.message) === keyCount(message.message) &&
    !text.includes("\uFFFD")
  );
}

export function decodeDelivery(partition: number, subject: string, data: Uint8Array): Decoded {
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, problems: [{ path: "", reason: "is not JSON" }] };
  }
  const v = validateMessage(parsed);
  if (!v.ok) return v;
  const expected = eventSubject(partition, v.value.metadata.channel);
  if (subject !== expected) {
    return { ok: false, problems: [{ path: "metadata.channel", reason: `belongs on ${expected}, found on ${subject}` }] };
  }
  if (isExactly(parsed, v.value, text)) keepJsonSize(v.value, data.byteLength);
  return { ok: true, message: v.value };
}

/** The raw reader of a channel's parked messages (StreamParkedMessages). */
export interface ParkedSource {
  read(
    partition: number,
    channel: string,
    fromSeq: number,
    onMessage: (m: { seq: number; subject: string; data: Uint8Array }) => void,
    throughSeq?: number,
  ): Promise<unknown>;
  census(partition: number, channel: string): Promise<{ count: number; firstSeq: number }>;
  firstSeq(partition: number, channel: string, fromSeq: number): Promise<number>;
  held(): Promise<{ firstSeq: number; maxAgeMs: number }>;
}

/**
 * Parked messages decoded as the worker decodes deliveries: what the worker
 * would terminate (not JSON, invalid, another channel's) is skipped, as it
 * never changed any state.
 */
export function decodedParked(source: ParkedSource): ParkedMessages {
  return {
    async read(partition, channel, fromSeq, onMessage, throughSeq) {
      await source.read(
        partition,
        channel,
        fromSeq,
        (m) => {
          const decoded = decodeDelivery(partition, m.subject, m.data);
          if (decoded.ok && decoded.message.metadata.channel === channel) onMessage(m.seq, decoded.message);
        },
        throughSeq,
      );
    },
    census: (partition, channel) => source.census(partition, channel),
    firstSeq: (partition, channel, fromSeq) => source.firstSeq(partition, channel, fromSeq),
    held: () => source.held(),
  };
}

function quietly(settle: () => void): void {
  try {
    settle();
  } catch {
    // The connection is closing; the server redelivers after ack_wait.
  }
}

/**
 * Settling never throws (on a closed connection the message is simply
 * redelivered later) and counts once, however often it is called.
 */
class WorkerDelivery implements Delivery {
  private settled = false;

  readonly seq: number;

  constructor(
    private readonly inner: StreamDelivery,
    readonly message: RocketMessage,
    private readonly worker: PartitionWorker,
  ) {
    this.seq = inner.seq;
  }

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    quietly(() => this.inner.ack());
    this.worker.settledOne();
  }

  nak(delayMs?: number): void {
    if (this.settled) return;
    this.settled = true;
    quietly(() => this.inner.nak(delayMs));
    this.worker.settledOne();
  }
}

export class PartitionWorker {
  private state: WorkerState = WorkerState.Running;
  private inFlight = 0;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private lastDelivered: StreamDelivery | undefined;
  private readonly outage: FetchOutage;

  constructor(
    readonly partition: number,
    private readonly source: PartitionSource,
    private readonly registry: ActorRegistry,
    private readonly settings: WorkerSettings,
    private readonly metrics: SequencerMetrics,
    private readonly log: Logger,
  ) {
    this.outage = new FetchOutage(log, partition);
  }

  start(): void {
    this.loopDone = this.loop();
  }

  /**
   * Stops pulling, lets the actors finish what they hold, then resolves. A
   * fetch that does not end in time (a connection gone quiet) is abandoned:
   * whatever it still brings is nak'ed, and release does not hang on it.
   */
  async release(): Promise<void> {
    if (this.state === WorkerState.Running) this.state = WorkerState.Releasing;
    this.poke();
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.settings.fetchExpiresMs * FETCH_PATIENCE);
    });
    await Promise.race([this.loopDone, patience]);
    clearTimeout(timer);
    // Lost meanwhile: its actors are gone, and any there now belong to the partition's next worker.
    if (this.state === WorkerState.Lost) return;
    await this.registry.drainPartition(this.partition);
    this.state = WorkerState.Lost;
  }

  /** Stops at once: the partition belongs to someone else now. */
  lose(): void {
    this.state = WorkerState.Lost;
    this.poke();
    this.registry.dropPartition(this.partition);
  }

  /**
   * The partition's consumer lag. While messages flow, every delivery
   * carries it; only an idle (or stalled) partition costs a consumer info
   * request, which on 2.9 scans the stream for a wildcard filter.
   */
  async lag(): Promise<number> {
    const last = this.lastDelivered;
    this.lastDelivered = undefined;
    if (last) return last.info.pending;
    return (await this.source.position()).pending;
  }

  settledOne(): void {
    this.inFlight -= 1;
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.poke(), ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    while (this.state === WorkerState.Running) {
      const room = this.settings.maxInFlight - this.inFlight;
      if (room <= 0) {
        await this.sleep(undefined);
        continue;
      }
      try {
        await this.source.fetch(Math.min(this.settings.fetchBatch, room), this.settings.fetchExpiresMs, this.onMessage);
        this.outage.succeeded();
      } catch (err) {
        if (this.state !== WorkerState.Running) break;
        this.metrics.fetchFailed();
        this.outage.failed(err);
        this.source.reset();
        await this.sleep(this.settings.retryDelayMs);
      }
    }
  }

  private readonly onMessage = (delivery: StreamDelivery): void => {
    this.lastDelivered = delivery;
    if (this.state === WorkerState.Lost) {
      quietly(() => delivery.nak(this.settings.fetchExpiresMs));
      return;
    }
    const decoded = decodeDelivery(this.partition, delivery.subject, delivery.data);
    if (!decoded.ok) {
      // No reason text: a 2.9 server does not recognise "+TERM <reason>" and would leave the message pending.
      quietly(() => delivery.term());
      this.metrics.settled(DeliveryOutcome.Rejected);
      this.log.warn(
        { partition: this.partition, subject: delivery.subject, problems: decoded.problems },
        "invalid message in the stream terminated",
      );
      return;
    }
    this.inFlight += 1;
    this.registry.deliver(this.partition, new WorkerDelivery(delivery, decoded.message, this));
  };
}
