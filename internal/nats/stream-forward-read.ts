// Reads a stream's messages on one subject filter, from a sequence onwards,
// in stream order, without a consumer: the read path of every NATS user that
// may not create one (deploy/nats/accounts.conf: ingest and the API hold no
// consumer of any stream, so no consumer configuration they send can deliver
// anything anywhere).
//
// Guarantees:
// - Every message the stream holds on the filter at or after `fromSeq`, once
//   each, in stream order, up to what the stream's leader holds when the read
//   ends (or until `visit` returns false).
// - Batched direct gets first, when the stream allows them: any replica may
//   answer, and its answer is a prefix of the stream as the leader wrote it
//   (a replica applies the stream's log in order, and serves a batch under the
//   stream's read lock), so a lagging replica ends the batch early and never
//   skips a message. Then the stream's leader (STREAM.MSG.GET with
//   next_by_subj) is asked for what follows, one message per request, until it
//   says there is none: where a read ends is the leader's word, never a
//   replica's.
// - A stream without direct gets (one created before they were turned on),
//   or whose direct responders do not answer, is read from its leader alone:
//   slower, the same messages.
// - With `toSeq`, the read ends there: every message held at or below it is
//   visited and none above, and `next` is `toSeq + 1` (what the stream no
//   longer holds below it was superseded or removed). A caller that learns of
//   later messages another way (the state watcher's republished entries)
//   sets it, so that a read never chases a stream written faster than one
//   leader request per message: unbounded, such a read would not end while
//   the writes go on.
//
// No NATS type leaves this module but the entries' headers.

import type { JetStreamManager, MsgRequest, NextMsgRequest } from "@nats-io/jetstream";
import { createInbox, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";

/** One stored message as a read returns it. */
export interface StoredEntry {
  seq: number;
  /** The subject the message was stored under. */
  subject: string;
  /** When the stream stored it, as the server writes it (RFC 3339 in UTC, up to nine fraction digits). */
  timestamp: string;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
}

export interface ForwardRead {
  stream: string;
  /** The subject filter (wildcards allowed). */
  filter: string;
  fromSeq: number;
  /** The stream allows direct gets (its `allow_direct`): read in batches from any replica first. */
  direct: boolean;
  /** Longest silence within one direct batch before the leader takes over the read. */
  timeoutMs: number;
  /** The last sequence to read (inclusive); to the stream's end when undefined. */
  toSeq?: number | undefined;
  /** The connection's inbox prefix: a batch's answers come there. */
  inboxPrefix?: string | undefined;
}

/** Most messages, and bytes, one direct get request returns. */
const BATCH = 1000;
const BATCH_MAX_BYTES = 1024 * 1024;

/** The status a batched direct get ends with (404: nothing at or after the sequence asked; 503: no responders). */
const END_OF_BATCH = 204;

export function directGetSubject(stream: string): string {
  return `$JS.API.DIRECT.GET.${stream}`;
}

/**
 * Visits every message of `read` in stream order; `visit` returns false to
 * stop. Resolves with the sequence after the last message visited.
 */
export async function readForward(
  nc: NatsConnection,
  jsm: JetStreamManager,
  read: ForwardRead,
  visit: (entry: StoredEntry) => boolean | void,
): Promise<{ next: number; stopped: boolean }> {
  let next = Math.max(1, read.fromSeq);
  const last = read.toSeq ?? Number.POSITIVE_INFINITY;
  // Read to the end (or to `toSeq`): with a bound, nothing below it is left unread.
  const ended = () => ({ next: Number.isFinite(last) ? Math.max(next, last + 1) : next, stopped: false });
  if (next > last) return ended();
  if (read.direct) {
    for (;;) {
      const batch = await directBatch(nc, read, next, last, visit);
      next = batch.next;
      if (batch.stopped) return { next, stopped: true };
      if (batch.passed || next > last) return ended();
      if (!batch.more) break;
    }
  }
  for (;;) {
    // STREAM.MSG.GET takes next_by_subj (the server's JSApiMsgGetRequest); nats.js types only its seq and last_by_subj forms.
    const request: NextMsgRequest = { seq: next, next_by_subj: read.filter };
    const stored = await jsm.streams.getMessage(read.stream, request as unknown as MsgRequest);
    if (stored === null || stored.seq > last) return ended();
    next = stored.seq + 1;
    const entry = { seq: stored.seq, subject: stored.subject, timestamp: stored.timestamp, headers: stored.header, data: stored.data };
    if (visit(entry) === false) return { next, stopped: true };
  }
}

/**
 * One batched direct get from `from`. `more`: the responder holds more than
 * it sent (a full batch). `passed`: it sent a message past `last`, so it held
 * every one up to `last` (its answer is a prefix of the stream). Silence, no
 * responders or an error status end the batch early: the leader reads the
 * rest.
 */
function directBatch(
  nc: NatsConnection,
  read: ForwardRead,
  from: number,
  last: number,
  visit: (entry: StoredEntry) => boolean | void,
): Promise<{ next: number; more: boolean; stopped: boolean; passed: boolean }> {
  return new Promise((resolve, reject) => {
    let next = from;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const inbox = createInbox(read.inboxPrefix);
    const finish = (more: boolean, stopped = false, passed = false) => {
      clearTimeout(timer);
      sub.unsubscribe();
      resolve({ next, more, stopped, passed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), read.timeoutMs);
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish(false);
        const code = msg.headers?.code ?? 0;
        if (code === END_OF_BATCH) return finish(Number(msg.headers?.get("Nats-Num-Pending") ?? 0) > 0);
        // Nothing at or after `next` on this responder, no responders (no direct gets), or an error: the leader decides.
        if (code !== 0) return finish(false);
        const seq = Number(msg.headers?.get("Nats-Sequence"));
        if (!Number.isSafeInteger(seq) || seq < next) return finish(false);
        if (seq > last) return finish(false, false, true);
        next = seq + 1;
        const entry = { seq, subject: msg.headers?.get("Nats-Subject") ?? "", timestamp: msg.headers?.get("Nats-Time-Stamp") ?? "", headers: msg.headers, data: msg.data };
        let wanted: boolean | void;
        try {
          wanted = visit(entry);
        } catch (visitError) {
          clearTimeout(timer);
          sub.unsubscribe();
          return reject(visitError as Error);
        }
        if (wanted === false) return finish(false, true);
        arm();
      },
    });
    // A bounded read asks for no more messages than there are sequences left to it.
    const batch = Math.min(BATCH, last - from + 1);
    nc.publish(directGetSubject(read.stream), JSON.stringify({ seq: from, next_by_subj: read.filter, batch, max_bytes: BATCH_MAX_BYTES }), {
      reply: inbox,
    });
    arm();
  });
}
