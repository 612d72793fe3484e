// Takes messages from the HTTP routes to the stream: validates each one,
// publishes the valid ones (a batch pipelined: its publishes do not wait for
// one another's acks) and says what became of each. Expected
// outcomes (accepted, duplicate, invalid, unavailable) are return values;
// only a bug throws.

import { validateMessage, type Problem, type RocketMessage } from "../../internal/domain/message.js";
import {
  PublishTimeoutError,
  PublishUnavailableError,
  type MessagePublisher,
  type PublishResult,
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
    const [result] = await this.publisher.publishMany([validation.value]);
    return this.outcomeOf(result!, true);
  }

  /** Stores every valid item of a batch, pipelined (the publisher bounds how many await an ack); one result per item, in order. */
  async batch(items: readonly unknown[]): Promise<BatchOutcome> {
    const outcome: BatchOutcome = { accepted: 0, duplicate: 0, invalid: 0, unavailable: 0, results: new Array(items.length) };
    const valid: RocketMessage[] = [];
    const positions: number[] = [];
    for (let index = 0; index < items.length; index++) {
      const validation = validateMessage(items[index]);
      if (validation.ok) {
        valid.push(validation.value);
        positions.push(index);
      } else {
        outcome.invalid += 1;
        outcome.results[index] = { index, status: "invalid", errors: validation.problems };
      }
    }
    if (outcome.invalid > 0) this.metrics.message("invalid", outcome.invalid);
    const published = await this.publisher.publishMany(valid);
    let logged = false;
    for (let k = 0; k < published.length; k++) {
      const index = positions[k]!;
      // One log line per batch at most: a refusing stream refuses the whole batch.
      const result = this.outcomeOf(published[k]!, !logged);
      outcome[result.status] += 1;
      if (result.status === "unavailable") {
        logged ||= result.reason === FailureReason.error;
        outcome.results[index] = { index, status: result.status, detail: result.detail };
      } else {
        outcome.results[index] = { index, ...result };
      }
    }
    return outcome;
  }

  private outcomeOf(result: PublishResult, log: boolean): Outcome {
    if (result.ok) {
      this.metrics.publishTook(result.seconds);
      const status = result.ack.duplicate ? "duplicate" : "accepted";
      this.metrics.message(status);
      return { status, seq: result.ack.seq };
    }
    // An unavailable stream (not connected, connection lost, no stream) says nothing about its latency; a timeout does.
    if (!(result.error instanceof PublishUnavailableError) || result.error instanceof PublishTimeoutError) {
      this.metrics.publishTook(result.seconds);
    }
    return this.failed(result.error, log);
  }

  private failed(err: unknown, log: boolean): Outcome {
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
    if (log) this.log.error({ err }, "publish failed");
    return { status: "unavailable", reason: FailureReason.error, detail: "the message could not be stored" };
  }
}
