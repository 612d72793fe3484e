// The NATS side of ingest on a provisioned topology: the publisher into the
// events stream, and what it reads to answer a resend that comes after the
// stream's duplicate window (the StoredNumbers port of
// cmd/ingest/resend-check.ts, with that window). cmd/ingest builds its
// service from these without touching a NATS client.
//
// Guarantees:
// - Stored numbers are read with direct gets, which any replica may answer:
//   a lagging one only leaves a resend to the stream's own deduplication,
//   never takes a new message for a resend (internal/nats/stored-numbers.ts).
// - The duplicate window is the stream's, read from the server, not the
//   configuration's: it is the deployment's, whoever created the stream.

import { StreamChannelHistory } from "./channel-history.js";
import type { NatsConnection } from "./connection.js";
import { EventPublisher } from "./event-publisher.js";
import { StreamStoredNumbers } from "./stored-numbers.js";
import { STATE_BUCKET, STREAM_NAME, type Provisioned } from "./topology.js";
import type { Logger } from "../observability/logger.js";

const STREAM_CHECK_TIMEOUT_MS = 2000;
/** A late resend's read of what is stored under its number: bounded like the API's history read. */
const RESEND_SCAN = { maxMessages: 100_000, fetchTimeoutMs: 5000 };

export interface IngestAdapterSettings {
  /** How long a publish may take in all before it fails as a timeout. */
  publishTimeoutMs: number;
  /** Most publishes awaiting the stream's ack at once. */
  publishMaxInFlight: number;
  /** The connection's inbox prefix (NatsSettings.inboxPrefix): acks and deliveries come there. */
  inboxPrefix: string | undefined;
}

export interface IngestAdapters {
  publisher: EventPublisher;
  storedNumbers: StreamStoredNumbers;
  /** The events stream's duplicate window in milliseconds. */
  duplicateWindowMs: number;
}

export async function openIngestAdapters(nc: NatsConnection, provisioned: Provisioned, settings: IngestAdapterSettings, log: Logger): Promise<IngestAdapters> {
  const { jsm, kvm, topology } = provisioned;
  const publisher = new EventPublisher(nc, jsm, topology, {
    timeoutMs: settings.publishTimeoutMs,
    maxInFlight: settings.publishMaxInFlight,
    checkTimeoutMs: STREAM_CHECK_TIMEOUT_MS,
    inboxPrefix: settings.inboxPrefix,
  });
  const stream = await jsm.streams.info(STREAM_NAME);
  const storedNumbers = new StreamStoredNumbers(
    await kvm.open(STATE_BUCKET, { allow_direct: true }),
    new StreamChannelHistory(nc, jsm, RESEND_SCAN, log, settings.inboxPrefix),
  );
  return { publisher, storedNumbers, duplicateWindowMs: stream.config.duplicate_window / 1e6 };
}
