// The ingest side of the events stream: the HTTP routes publish through it
// from the moment the server listens, before NATS is reachable and while it
// is away. Until a publisher is attached, and whenever it is disconnected,
// publishes fail at once with PublishUnavailableError (the routes answer 503
// with Retry-After) and readiness says why. Like every MessagePublisher, it
// reports failures as values, never as rejections.
//
// Readiness also needs the stream itself to answer: that is checked in the
// background every few seconds and the last answer is cached, so that a
// readiness probe costs nothing and never waits on NATS.

import type { RocketMessage } from "../../internal/domain/message.js";
import {
  PublishUnavailableError,
  type MessagePublisher,
  type PublishResult,
  type StoredRead,
  type StreamPublisher,
} from "../../internal/ingest/message-publisher.js";
import type { Logger } from "../../internal/observability/logger.js";

export const STREAM_CHECK_INTERVAL_MS = 2000;

export class StreamGateway implements MessagePublisher {
  private publisher: StreamPublisher | undefined;
  private streamProblem: string | undefined = "events stream not checked yet";
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private closing = false;

  constructor(
    private readonly log: Logger,
    private readonly checkIntervalMs = STREAM_CHECK_INTERVAL_MS,
  ) {}

  /** Starts publishing through `publisher`; resolves after the first stream check. */
  async attach(publisher: StreamPublisher): Promise<void> {
    this.publisher = publisher;
    await this.checkStream();
    if (!this.closing) {
      this.timer = setInterval(() => void this.checkStream(), this.checkIntervalMs);
      this.timer.unref();
    }
  }

  get connected(): boolean {
    return this.publisher?.connected ?? false;
  }

  publish(message: RocketMessage): Promise<PublishResult> {
    if (this.publisher === undefined) return Promise.resolve({ ok: false, error: notYetConnected(), seconds: 0 });
    return this.publisher.publish(message);
  }

  publishMany(messages: readonly RocketMessage[]): Promise<PublishResult[]> {
    if (this.publisher === undefined) {
      const error = notYetConnected();
      return Promise.resolve(messages.map(() => ({ ok: false, error, seconds: 0 })));
    }
    return this.publisher.publishMany(messages);
  }

  storedAt(seq: number): Promise<StoredRead> {
    if (this.publisher === undefined) return Promise.resolve({ ok: false, error: notYetConnected() });
    return this.publisher.storedAt(seq);
  }

  /** Undefined when ready to take messages, else why not. */
  notReadyReason(): string | undefined {
    if (this.closing) return "shutting down";
    if (!this.connected) return "not connected to NATS";
    return this.streamProblem;
  }

  /** Says not ready from now on and stops the background checks; publishing keeps working for in-flight requests. */
  close(): void {
    this.closing = true;
    clearInterval(this.timer);
  }

  private async checkStream(): Promise<void> {
    const publisher = this.publisher;
    // While disconnected, readiness already says so; the last answer stands until a check after reconnecting.
    if (publisher === undefined || this.checking || !publisher.connected) return;
    this.checking = true;
    try {
      const err = await publisher.checkStream();
      if (err === undefined) {
        if (this.streamProblem !== undefined) this.log.info("events stream reachable");
        this.streamProblem = undefined;
      } else {
        if (this.streamProblem === undefined) this.log.warn({ err }, "events stream unreachable");
        this.streamProblem = `events stream unreachable: ${err.message}`;
      }
    } finally {
      this.checking = false;
    }
  }
}

function notYetConnected(): PublishUnavailableError {
  return new PublishUnavailableError("not connected to NATS yet");
}
