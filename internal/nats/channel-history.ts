// Reads one channel's messages back from the events stream: the read path
// behind the API's history and point-in-time answers, and behind ingest's
// check of a resend that comes after the duplicate window.
//
// Guarantees:
// - Every message the stream holds on the channel's subject at the moment of
//   the read, in stream order, each with its stream sequence and the time the
//   stream stored it (nanoseconds kept). The filter `rockets.events.*.<channel>`
//   needs no partition count, so a reader never has to agree on one.
// - No consumer: batched direct gets, then the stream's leader for whatever a
//   lagging replica had not applied (internal/nats/stream-forward-read.ts), so
//   the read's end is the leader's. Ingest's and the API's NATS users may not
//   create a consumer at all (deploy/nats/accounts.conf, docs/security.md),
//   since the server would let them name any subject for its deliveries.
// - How many messages the channel holds is asked first (the stream's
//   per-subject counts, from its leader): a read of a very long history is
//   refused before it starts, and one that grows past the limit while it runs
//   is refused too.
// - Stored bytes that are not a valid rocket message are counted, not
//   returned: the sequencer terminated them and they changed nothing.
//
// No NATS type leaves this module.

import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { HistoryTooLongError, utcInstant, type ChannelHistorySource, type StoredHistory, type StoredMessage } from "../domain/history.js";
import { validateMessage } from "../domain/message.js";
import type { Logger } from "../observability/logger.js";
import { isApiError, JetStreamApiCode } from "./jetstream-codes.js";
import { readForward } from "./stream-forward-read.js";
import { STREAM_NAME, SUBJECT_PREFIX } from "./topology.js";

export interface ChannelHistorySettings {
  /** Most messages one read may return; a channel holding more is refused (HistoryTooLongError). */
  maxMessages: number;
  /** Longest silence within one batch of a read before the stream's leader takes over. */
  fetchTimeoutMs: number;
}

/**
 * A server timestamp (RFC 3339 in UTC, with as many fraction digits as it
 * needs, none for a whole second) as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
 */
export function receiveTime(timestamp: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(timestamp);
  if (!match) throw new Error(`not a server timestamp: ${JSON.stringify(timestamp)}`);
  return `${match[1]}.${(match[2] ?? "").padEnd(9, "0")}Z`;
}

export function channelFilter(channel: string): string {
  return `${SUBJECT_PREFIX}.*.${channel}`;
}

export class StreamChannelHistory implements ChannelHistorySource {
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly settings: ChannelHistorySettings,
    private readonly log: Logger,
    /** The connection's inbox prefix: a batch's answers come there, where this user may subscribe. */
    private readonly inboxPrefix?: string,
  ) {}

  async read(channel: string): Promise<StoredHistory> {
    const filter = channelFilter(channel);
    let stream: StreamInfo;
    try {
      stream = await this.jsm.streams.info(STREAM_NAME, { subjects_filter: filter });
    } catch (err) {
      // No stream yet (nothing was ever ingested): an empty history, not a failure.
      if (isApiError(err, JetStreamApiCode.StreamNotFound)) return { messages: [], rejected: 0, heldSince: null };
      throw err;
    }
    const heldSince = stream.state.messages > 0 ? (utcInstant(stream.state.first_ts) ?? null) : null;
    const stored = Object.values(stream.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
    if (stored > this.settings.maxMessages) throw new HistoryTooLongError(channel, stored, this.settings.maxMessages);
    const messages: StoredMessage[] = [];
    let rejected = 0;
    let seen = 0;
    await readForward(
      this.nc,
      this.jsm,
      { stream: STREAM_NAME, filter, fromSeq: stream.state.first_seq, direct: stream.config.allow_direct === true, timeoutMs: this.settings.fetchTimeoutMs, inboxPrefix: this.inboxPrefix },
      (entry) => {
        seen += 1;
        if (seen > this.settings.maxMessages) throw new HistoryTooLongError(channel, seen, this.settings.maxMessages);
        const message = this.decode(entry.data);
        // The sequencer rejects a message whose subject names another channel; so does the history.
        if (message === undefined || message.metadata.channel !== channel) rejected += 1;
        else messages.push({ seq: entry.seq, receivedAt: receiveTime(entry.timestamp), message });
      },
    );
    if (stream.config.allow_direct !== true) this.log.debug({ stream: STREAM_NAME }, "the events stream allows no direct gets: history read from its leader, one message per request");
    return { messages, rejected, heldSince };
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
