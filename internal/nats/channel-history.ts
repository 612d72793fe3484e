// Reads one channel's messages back from the events stream: the read path
// behind the API's history and point-in-time answers.
//
// Guarantees:
// - Every message the stream holds on the channel's subject at the moment of
//   the read, in stream order, each with its stream sequence and the time the
//   stream stored it (nanoseconds kept). The filter `rockets.events.*.<channel>`
//   needs no partition count, so a reader never has to agree on one.
// - One ephemeral push consumer per read, in memory, no acks, delivering to
//   this reader's own inbox, with flow control; the server removes it once
//   the read has unsubscribed (inactive_threshold), or if this process dies.
//   Its creation reports how many messages match, so a read knows when it is
//   done without waiting for a timeout, and a read of a very long history is
//   refused before it starts.
// - Push, not pull, for least privilege (deploy/nats/accounts.conf): a push
//   read needs only "create an ephemeral consumer" on the events stream and
//   its own inbox. A pull read would need CONSUMER.MSG.NEXT and
//   CONSUMER.DELETE on every consumer name (a permission cannot tell names
//   apart), which would let the API's user pull from, or delete, the
//   sequencer's durable consumers.
// - Stored bytes that are not a valid rocket message are counted, not
//   returned: the sequencer terminated them and they changed nothing.
//
// No NATS type leaves this module.

import { AckPolicy, DeliverPolicy, ReplayPolicy, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { createInbox, nanos, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { HistoryTooLongError, utcInstant, type ChannelHistorySource, type StoredHistory, type StoredMessage } from "../domain/history.js";
import { validateMessage } from "../domain/message.js";
import type { Logger } from "../observability/logger.js";
import { isApiError, JetStreamApiCode } from "./jetstream-codes.js";
import { STREAM_NAME, SUBJECT_PREFIX } from "./topology.js";

export interface ChannelHistorySettings {
  /** Most messages one read may return; a channel holding more is refused (HistoryTooLongError). */
  maxMessages: number;
  /** How long one fetch may wait for messages the consumer said it has. */
  fetchTimeoutMs: number;
}

/** A consumer whose reader unsubscribed (or died) is removed by the server after this long. */
const INACTIVE_THRESHOLD_MS = 2_000;
/** Heartbeats while idle, so that flow control cannot stall a read. */
const IDLE_HEARTBEAT_MS = 1_000;
/** The status the server puts on flow-control requests and idle heartbeats. */
const CONTROL_STATUS = 100;

/** The stream's nanosecond timestamp as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. */
export function receiveTime(timestampNanos: bigint): string {
  const iso = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${String(timestampNanos % 1_000_000_000n).padStart(9, "0")}Z`;
}

export function channelFilter(channel: string): string {
  return `${SUBJECT_PREFIX}.*.${channel}`;
}

/** Stream sequence and store time of a delivery, from its `$JS.ACK.` reply subject (both layouts the server uses). */
export function deliveryOf(reply: string): { seq: number; timestampNanos: bigint } | undefined {
  const tokens = reply.split(".");
  if (tokens.length === 9) tokens.splice(2, 0, "_", "");
  if (tokens.length < 11 || tokens[0] !== "$JS" || tokens[1] !== "ACK") return undefined;
  const seq = Number(tokens[7]);
  if (!Number.isSafeInteger(seq) || !/^\d+$/.test(tokens[9]!)) return undefined;
  return { seq, timestampNanos: BigInt(tokens[9]!) };
}

export class StreamChannelHistory implements ChannelHistorySource {
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly settings: ChannelHistorySettings,
    private readonly log: Logger,
    /** The connection's inbox prefix: the deliveries come there, where this user may subscribe. */
    private readonly inboxPrefix?: string,
  ) {}

  async read(channel: string): Promise<StoredHistory> {
    let stream: StreamInfo;
    try {
      stream = await this.jsm.streams.info(STREAM_NAME);
    } catch (err) {
      // No stream yet (nothing was ever ingested): an empty history, not a failure.
      if (isApiError(err, JetStreamApiCode.StreamNotFound)) return { messages: [], rejected: 0, heldSince: null };
      throw err;
    }
    const heldSince = stream.state.messages > 0 ? (utcInstant(stream.state.first_ts) ?? null) : null;
    const messages: StoredMessage[] = [];
    let rejected = 0;
    let seen = 0;
    let expected = Number.POSITIVE_INFINITY;
    let progress: () => void = () => {};
    const deliver = createInbox(this.inboxPrefix);
    // Subscribed before the consumer exists, so that no delivery can come before anyone listens.
    const sub = this.nc.subscribe(deliver, {
      callback: (err, msg) => {
        if (err) return;
        if (this.isControl(msg)) return;
        const delivery = msg.reply === undefined ? undefined : deliveryOf(msg.reply);
        seen += 1;
        const message = delivery === undefined ? undefined : this.decode(msg.data);
        // The sequencer rejects a message whose subject names another channel; so does the history.
        if (delivery === undefined || message === undefined || message.metadata.channel !== channel) rejected += 1;
        else messages.push({ seq: delivery.seq, receivedAt: receiveTime(delivery.timestampNanos), message });
        progress();
      },
    });
    try {
      const info = await this.jsm.consumers.add(STREAM_NAME, {
        description: "api: one channel's history",
        deliver_subject: deliver,
        filter_subject: channelFilter(channel),
        deliver_policy: DeliverPolicy.All,
        ack_policy: AckPolicy.None,
        replay_policy: ReplayPolicy.Instant,
        flow_control: true,
        idle_heartbeat: nanos(IDLE_HEARTBEAT_MS),
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
      });
      // Deliveries may begin before this answer: what it counts as delivered plus what it counts as pending is the whole.
      expected = info.num_pending + info.delivered.consumer_seq;
      if (expected > this.settings.maxMessages) throw new HistoryTooLongError(channel, expected, this.settings.maxMessages);
      // Done when every counted message came; a pause longer than fetchTimeoutMs means the rest were removed meanwhile.
      while (seen < expected) {
        const before = seen;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.settings.fetchTimeoutMs);
          progress = () => {
            if (seen >= expected) {
              clearTimeout(timer);
              resolve();
            }
          };
          if (seen >= expected) {
            clearTimeout(timer);
            resolve();
          }
        });
        if (seen === before) break;
      }
      return { messages, rejected, heldSince };
    } finally {
      // The server removes the consumer once nobody listens on its subject (INACTIVE_THRESHOLD_MS): no delete right needed.
      sub.unsubscribe();
    }
  }

  /** Flow-control requests are answered (or the server stops sending); heartbeats are only a sign of life. */
  private isControl(msg: Msg): boolean {
    if (msg.headers?.code !== CONTROL_STATUS) return false;
    if (msg.reply) msg.respond();
    return true;
  }

  private decode(data: Uint8Array) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(this.decoder.decode(data));
    } catch {
      return undefined;
    }
    const v = validateMessage(parsed);
    return v.ok ? v.value : undefined;
  }
}
