// Reads back the messages a channel parked in the events stream: the
// sequencer's way to fetch what waits behind a gap instead of keeping a
// second copy of it in KV.
//
// Guarantees:
// - Every message the stream holds on the channel's subject from `fromSeq`
//   up to the last one the partition's consumer has delivered (its
//   `delivered.stream_seq`, read from the server when the read starts), or
//   up to `throughSeq` when the caller gives one (it must have been
//   delivered already: a takeover's takenAt, a range an earlier read
//   found), in
//   stream order, each with its stream sequence. Nothing later is read: a
//   message the consumer never delivered was never acked, so never parked;
//   it reaches the actor through the consumer. Reading it here as well made
//   a launch in the middle of a burst re-read the whole burst once per
//   window of MAX_PENDING_PER_CHANNEL numbers (quadratic; 158,007 reads for
//   9,013 in-order messages at a window of 200). Without the partition's
//   consumer (not created yet) the read goes to the stream's end.
// - Reads go through a consumer, which the stream's leader serves: never a
//   direct get, which a lagging replica may answer without a message the
//   leader holds (a missed message here would be a message lost).
// - One ephemeral pull consumer per read, in memory, no acks, named
//   `reread-<nuid>` and filtered on the channel's subject: exactly what the
//   sequencer's NATS user may create (a named consumer filtered under
//   `rockets.events.*.*`, deploy/nats/accounts.conf) and pull from. That
//   user may not delete consumers of the events stream (so a leaked password
//   cannot delete the partitions' durables): the server removes a read's
//   consumer INACTIVE_THRESHOLD_MS after its last pull. Messages are handed
//   to the caller one fetch batch at a time, so memory is bounded by the
//   caller, not by the gap.
//
// No NATS type leaves this module.

import { AckPolicy, DeliverPolicy, ReplayPolicy, type JetStreamClient, type JetStreamManager, type MsgRequest } from "@nats-io/jetstream";
import { nanos, nuid } from "@nats-io/transport-node";
import { isApiError, JetStreamApiCode } from "./jetstream-codes.js";
import { consumerName } from "./partition-consumer.js";
import { eventSubject, STREAM_NAME } from "./topology.js";

/** One stored message on the channel's subject. */
export interface ParkedMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
}

/** Messages pulled per fetch request. */
const FETCH_BATCH = 1000;
/** A read's consumer is removed by the server this long after its last pull. */
const INACTIVE_THRESHOLD_MS = 5000;
const CONSUMER_PREFIX = "reread-";

export interface ParkedReadResult {
  /** Messages handed to the caller: every one the stream held on the subject from fromSeq when the read started. */
  read: number;
}

/** A read ended before every counted message arrived; the caller retries later rather than act on part of it. */
export class ParkedReadError extends Error {
  override name = "ParkedReadError";
  constructor(readonly channel: string, readonly read: number, readonly expected: number) {
    super(`re-read of ${channel}'s parked messages stopped after ${read} of ${expected}`);
  }
}

/** How many messages the stream holds on a channel's subject, and its first sequence overall. */
export interface SubjectCensus {
  count: number;
  firstSeq: number;
}

export class StreamParkedMessages {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly fetchTimeoutMs: number,
  ) {}

  /**
   * One request to the stream's leader: the messages held on the channel's
   * subject, and the stream's first sequence (below it, retention removed
   * everything). Lets a caller that has seen every one of them skip a read.
   */
  async census(partition: number, channel: string): Promise<SubjectCensus> {
    const subject = eventSubject(partition, channel);
    const info = await this.jsm.streams.info(STREAM_NAME, { subjects_filter: subject });
    return { count: info.state.subjects?.[subject] ?? 0, firstSeq: info.state.first_seq };
  }

  /**
   * One request to the stream's leader: the first sequence it still holds
   * (below it, retention removed everything) and how long it keeps messages
   * (max_age; 0: no limit).
   */
  async held(): Promise<{ firstSeq: number; maxAgeMs: number }> {
    const info = await this.jsm.streams.info(STREAM_NAME);
    return { firstSeq: info.state.first_seq, maxAgeMs: info.config.max_age / 1e6 };
  }

  /**
   * One request to the stream's leader (`STREAM.MSG.GET` with
   * `next_by_subj`, never a direct get, which a lagging replica may answer):
   * the lowest stream sequence at or above `fromSeq` holding a message on the
   * channel's subject, valid or not; Infinity when there is none. It lets a
   * caller skip a read of a range that holds none of the channel's messages
   * without creating a consumer.
   */
  async firstSeq(partition: number, channel: string, fromSeq: number): Promise<number> {
    try {
      const stored = await this.jsm.streams.getMessage(STREAM_NAME, { seq: Math.max(1, fromSeq), next_by_subj: eventSubject(partition, channel) } as MsgRequest);
      return stored === null ? Number.POSITIVE_INFINITY : stored.seq;
    } catch (err) {
      if (isApiError(err, JetStreamApiCode.NoMessageFound)) return Number.POSITIVE_INFINITY;
      throw err;
    }
  }

  /** The last stream sequence the partition's consumer delivered; unbounded when it has no consumer yet. */
  private async deliveredThrough(partition: number): Promise<number> {
    try {
      return (await this.jsm.consumers.info(STREAM_NAME, consumerName(partition))).delivered.stream_seq;
    } catch (err) {
      if (isApiError(err, JetStreamApiCode.ConsumerNotFound)) return Number.POSITIVE_INFINITY;
      throw err;
    }
  }

  /**
   * Hands every message on `channel`'s subject of `partition` from stream
   * sequence `fromSeq` on to `onMessage`, in stream order. Throws when the
   * read fails part-way (the caller must not act on a partial read).
   */
  async read(
    partition: number,
    channel: string,
    fromSeq: number,
    onMessage: (m: ParkedMessage) => void,
    throughSeq = Number.POSITIVE_INFINITY,
  ): Promise<ParkedReadResult> {
    // A finite bound is one the caller saw delivered already (a takeover's takenAt, a range an earlier read found): no need to ask.
    const through = Number.isFinite(throughSeq) ? throughSeq : await this.deliveredThrough(partition);
    if (through < fromSeq) return { read: 0 };
    const info = await this.jsm.consumers.add(STREAM_NAME, {
      name: `${CONSUMER_PREFIX}${nuid.next()}`,
      description: "sequencer: re-reads a channel's parked messages",
      filter_subject: eventSubject(partition, channel),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
      ack_policy: AckPolicy.None,
      replay_policy: ReplayPolicy.Instant,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
    });
    const expected = info.num_pending;
    const consumer = this.js.consumers.getConsumerFromInfo(info);
    let read = 0;
    while (read < expected) {
      const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, expected - read), expires: this.fetchTimeoutMs });
      let got = 0;
      for await (const msg of batch) {
        if (msg.seq > through) {
          batch.stop();
          return { read };
        }
        got += 1;
        onMessage({ seq: msg.seq, subject: msg.subject, data: msg.data });
      }
      // Nothing within the timeout although the consumer counted more: never act on part of a gap.
      if (got === 0) throw new ParkedReadError(channel, read, expected);
      read += got;
    }
    return { read };
  }
}
