// What ingest needs to know about numbers already stored, to answer a resend
// that comes after the stream's duplicate window honestly (see
// cmd/ingest/resend-check.ts, the port this implements).
//
// Guarantees:
// - appliedThrough reads the channel's state entry: every number at or
//   below it was stored and applied. A replica may answer the read and lag
//   behind the leader: a lower number than the truth only makes the caller
//   look again later, never call a new message a resend.
// - firstStored scans the channel's own subject in stream order (one
//   ephemeral in-memory consumer per scan, no acks, deleted afterwards and
//   expired by the server if this process dies first), stops at the first
//   message carrying the number, and never reads past `beforeSeq`. A channel
//   holding more than `maxScan` messages before that point is refused with
//   StoredScanTooLongError before anything is fetched.
// - dropCopy removes one message by sequence; used only for a copy the
//   caller has just stored itself and knows the sequencer will never apply.
//
// No NATS type leaves this module.

import { AckPolicy, DeliverPolicy, ReplayPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { nanos } from "@nats-io/transport-node";
import type { Logger } from "../observability/logger.js";
import { channelFilter } from "./channel-history.js";
import { ChannelStateStore } from "./channel-state-store.js";
import { STREAM_NAME } from "./topology.js";

export class StoredScanTooLongError extends Error {
  override name = "StoredScanTooLongError";
  constructor(readonly channel: string, readonly held: number, readonly limit: number) {
    super(`channel holds ${held} messages to search, more than ${limit}`);
  }
}

export interface StoredNumbersSettings {
  /** Most messages one scan may read. */
  maxScan: number;
  /** How long one fetch may wait for messages the consumer said it has. */
  fetchTimeoutMs: number;
}

const FETCH_BATCH = 1000;
const INACTIVE_THRESHOLD_MS = 30_000;

/** Implements ingest's StoredNumbers port (cmd/ingest/resend-check.ts), checked where it is wired. */
export class StreamStoredNumbers {
  private readonly states: ChannelStateStore;
  private readonly decoder = new TextDecoder();

  constructor(
    stateKv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly settings: StoredNumbersSettings,
    private readonly log: Logger,
  ) {
    this.states = new ChannelStateStore(stateKv);
  }

  async appliedThrough(channel: string): Promise<number> {
    const stored = await this.states.load(channel);
    return stored?.state.lastApplied ?? 0;
  }

  async firstStored(channel: string, messageNumber: number, beforeSeq: number): Promise<{ seq: number; message: unknown } | undefined> {
    const info = await this.jsm.consumers.add(STREAM_NAME, {
      description: "ingest: the first message stored under one number",
      filter_subject: channelFilter(channel),
      deliver_policy: DeliverPolicy.All,
      ack_policy: AckPolicy.None,
      replay_policy: ReplayPolicy.Instant,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(INACTIVE_THRESHOLD_MS),
    });
    try {
      const held = info.num_pending;
      if (held > this.settings.maxScan) throw new StoredScanTooLongError(channel, held, this.settings.maxScan);
      const consumer = this.js.consumers.getConsumerFromInfo(info);
      let seen = 0;
      while (seen < held) {
        const batch = await consumer.fetch({ max_messages: Math.min(FETCH_BATCH, held - seen), expires: this.settings.fetchTimeoutMs });
        let got = 0;
        for await (const msg of batch) {
          got += 1;
          if (msg.seq >= beforeSeq) {
            batch.stop();
            return undefined;
          }
          const message = this.parse(msg.data);
          if (numberOf(message, channel) === messageNumber) {
            batch.stop();
            return { seq: msg.seq, message };
          }
        }
        if (got === 0) break;
        seen += got;
      }
      return undefined;
    } finally {
      this.jsm.consumers.delete(STREAM_NAME, info.name).catch((err: unknown) => {
        this.log.warn({ err, consumer: info.name }, "could not delete a resend scan's consumer; the server expires it");
      });
    }
  }

  async dropCopy(seq: number): Promise<void> {
    await this.jsm.streams.deleteMessage(STREAM_NAME, seq, false);
  }

  private parse(data: Uint8Array): unknown {
    try {
      return JSON.parse(this.decoder.decode(data));
    } catch {
      return undefined;
    }
  }
}

/** The message number a stored message carries for `channel`, if it is one of that channel's. */
function numberOf(stored: unknown, channel: string): number | undefined {
  const metadata = (stored as { metadata?: { channel?: unknown; messageNumber?: unknown } } | null)?.metadata;
  if (metadata?.channel !== channel || typeof metadata.messageNumber !== "number") return undefined;
  return metadata.messageNumber;
}
