// Reads one channel's messages back from the events stream: the read path
// behind the API's history and point-in-time answers.
//
// Guarantees:
// - Every message the stream holds on the channel's subject at the moment of
//   the read, in stream order, each with its stream sequence and the time the
//   stream stored it (nanoseconds kept). The filter `rockets.events.*.<channel>`
//   needs no partition count, so a reader never has to agree on one.
// - Works on any server the project supports (2.9 up): one ephemeral pull
//   consumer per read, in memory, no acks, deleted after the read and expired
//   by the server if this process dies first. Its creation reports how many
//   messages match, so a read knows when it is done without waiting for a
//   timeout, and a read of a very long history is refused before it starts.
// - Stored bytes that are not a valid rocket message are counted, not
//   returned: the sequencer terminated them and they changed nothing.
//
// No NATS type leaves this module.

import { AckPolicy, DeliverPolicy, ReplayPolicy, type JetStreamClient, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
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

/** Messages pulled per fetch request. */
const FETCH_BATCH = 1000;
/** A consumer whose reader died is removed by the server after this long. */
const INACTIVE_THRESHOLD_MS = 30_000;

/** The stream's nanosecond timestamp as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. */
export function receiveTime(timestampNanos: bigint): string {
  const iso = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${String(timestampNanos % 1_000_000_000n).padStart(9, "0")}Z`;
}

export function channelFilter(channel: string): string {
  return `${SUBJECT_PREFIX}.*.${channel}`;
}

export class StreamChannelHistory implements ChannelHistorySource {
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly settings: ChannelHistorySettings,
    private readonly log: Logger,
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
    const info = await this.jsm.consumers.add(STREAM_NAME, {
      description: "api: one channel's history",
      filter_subject: channelFilter(channel),
      deliver_policy: DeliverPolicy.All,
      ack_policy: AckPolicy.None,
      replay_policy: ReplayPolicy.Instant,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
    });
    try {
      const expected = info.num_pending;
      if (expected > this.settings.maxMessages) throw new HistoryTooLongError(channel, expected, this.settings.maxMessages);
      const consumer = this.js.consumers.getConsumerFromInfo(info);
      const messages: StoredMessage[] = [];
      let rejected = 0;
      let seen = 0;
      while (seen < expected) {
        const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, expected - seen), expires: this.settings.fetchTimeoutMs });
        let got = 0;
        for await (const msg of batch) {
          got += 1;
          const message = this.decode(msg.data);
          // The sequencer rejects a message whose subject names another channel; so does the history.
          if (message === undefined || message.metadata.channel !== channel) rejected += 1;
          else messages.push({ seq: msg.seq, receivedAt: receiveTime(msg.timestampNanos), message });
        }
        // Nothing within the timeout although the consumer counted more: the messages were removed meanwhile.
        if (got === 0) break;
        seen += got;
      }
      return { messages, rejected, heldSince };
    } finally {
      // Best effort: a consumer left behind is removed by the server after INACTIVE_THRESHOLD_MS.
      this.jsm.consumers.delete(STREAM_NAME, info.name).catch((err: unknown) => {
        this.log.warn({ err, consumer: info.name }, "could not delete a history read's consumer; the server expires it");
      });
    }
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
