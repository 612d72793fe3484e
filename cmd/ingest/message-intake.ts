// Takes messages from the HTTP routes to the stream: validates each one,
// publishes the valid ones (a batch pipelined: its publishes do not wait for
// one another's acks) and says what became of each. Expected
// outcomes (accepted, duplicate, invalid, unavailable) are return values;
// only a bug throws.

import { validateMessage, type Problem } from "../../internal/domain/message.js";
import {
  PublishTimeoutError,
  PublishUnavailableError,
  type MessagePublisher,
} from "../../internal/nats/event-publisher.js";
import type { Logger } from "../../internal/observability/logger.js";
import { FailureReason, type IngestMetrics } from "./metrics.js";

export const ItemStatus = {
  accepted: "accepted",
  duplicate: "duplicate",
  invalid: "invalid",
  unavailable: "unavailable",
} as const;
export type ItemStatus = (typeof ItemStatus)[keyof typeof ItemStatus];

export type Outcome =
  | { status: "accepted" | "duplicate"; seq: number }
  | { status: "invalid"; errors: Problem[] }
  | { status: "unavailable"; reason: FailureReason; detail: string };

export type BatchItemResult =
  | { index: number; status: "accepted" | "duplicate"; seq: number }
  | { index: number; status: "invalid"; errors: Problem[] }
  | { index: number; status: "unavailable"; detail: string };

export interface BatchOutcome {
  accepted: number;
  duplicate: number;
  invalid: number;
  unavailable: number;
  results: BatchItemResult[];
}

export class MessageIntake {
  constructor(
    private readonly publisher: MessagePublisher,
    private readonly metrics: IngestMetrics,
    private readonly log: Logger,
  ) {}

  /** Validates and stores one message; resolves once the stream acked it, or says why not. */
  async one(input: unknown): Promise<Outcome> {
    const validation = validateMessage(input);
    if (!validation.ok) {
      this.metrics.message("invalid");
      return { status: "invalid", errors: validation.problems };
    }
    const started = performance.now();
    try {
      const ack = await this.publisher.publish(validation.value);
      this.metrics.publishTook((performance.now() - started) / 1000);
      const status = ack.duplicate ? "duplicate" : "accepted";
      this.metrics.message(status);
      return { status, seq: ack.seq };
    } catch (err) {
      // An unavailable stream (not connected, connection lost, no stream) says nothing about its latency; a timeout does.
      if (!(err instanceof PublishUnavailableError) || err instanceof PublishTimeoutError) {
        this.metrics.publishTook((performance.now() - started) / 1000);
      }
      return this.failed(err);
    }
  }

  /** Stores every valid item of a batch, all publishes issued at once (the publisher bounds how many await an ack); one result per item, in order. */
  async batch(items: readonly unknown[]): Promise<BatchOutcome> {
    const outcome: BatchOutcome = { accepted: 0, duplicate: 0, invalid: 0, unavailable: 0, results: new Array(items.length) };
    const publishes: Promise<void>[] = [];
    for (let index = 0; index < items.length; index++) {
      publishes.push(
        this.one(items[index]).then((result) => {
          outcome[result.status] += 1;
          outcome.results[index] =
            result.status === "unavailable"
              ? { index, status: result.status, detail: result.detail }
              : { index, ...result };
        }),
      );
    }
    await Promise.all(publishes);
    return outcome;
  }

  private failed(err: unknown): Outcome {
    if (err instanceof PublishTimeoutError) {
      this.metrics.publishFailed(FailureReason.timeout);
      return { status: "unavailable", reason: FailureReason.timeout, detail: err.message };
    }
    if (err instanceof PublishUnavailableError) {
      this.metrics.publishFailed(FailureReason.unavailable);
      return { status: "unavailable", reason: FailureReason.unavailable, detail: err.message };
    }
    // Not an outage we expect (the stream refused the message, or a bug): worth a log line each time.
    this.metrics.publishFailed(FailureReason.error);
    this.log.error({ err }, "publish failed");
    return { status: "unavailable", reason: FailureReason.error, detail: "the message could not be stored" };
  }
}
