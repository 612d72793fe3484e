// Takes messages from the HTTP routes to the stream: validates each one,
// publishes the valid ones (a batch pipelined: its publishes do not wait for
// one another's acks) and says what became of each. Expected
// outcomes (accepted, duplicate, conflict, invalid, unavailable) are return
// values; only a bug throws.
//
// A resend is a duplicate only when it says what is stored. The stream
// deduplicates by message id (channel and number) inside its duplicate
// window, whatever the content: so when it answers `duplicate`, the message
// stored at the sequence it names is read back (from the stream leader) and
// compared. A different message under a stored number is a conflict, never
// accepted: the stored one is never replaced. Reading back costs one request
// per duplicate, none for a new message. After the window the stream no
// longer knows the id and stores a resend again as new: when its number was
// already applied, ResendCheck finds the message first stored under it, the
// new copy is removed, and the answer is duplicate or conflict as above,
// never `accepted` (see resend-check.ts for what this costs and covers).

import { sameMessage, validateMessage, type Problem, type RocketMessage } from "../../internal/domain/message.js";
import {
  PublishTimeoutError,
  PublishUnavailableError,
  type MessagePublisher,
  type PublishResult,
} from "../../internal/nats/event-publisher.js";
import type { Logger } from "../../internal/observability/logger.js";
import { FailureReason, MessageResult, type IngestMetrics } from "./metrics.js";
import type { ResendCheck, StoredUnder } from "./resend-check.js";

export const ItemStatus = {
  accepted: "accepted",
  duplicate: "duplicate",
  conflict: "conflict",
  invalid: "invalid",
  unavailable: "unavailable",
} as const;
export type ItemStatus = (typeof ItemStatus)[keyof typeof ItemStatus];

/** What is stored under a message number a resend conflicts with: enough to recognise it, not the whole message. */
export interface StoredSummary {
  messageType: string;
  messageTime: string;
}

export type IntakeResult =
  | { status: "accepted" | "duplicate"; seq: number }
  | { status: "conflict"; seq: number; stored: StoredSummary }
  | { status: "invalid"; errors: Problem[] }
  | { status: "unavailable"; reason: FailureReason; detail: string };

export type BatchItemResult =
  | { index: number; status: "accepted" | "duplicate"; seq: number }
  | { index: number; status: "conflict"; seq: number; stored: StoredSummary }
  | { index: number; status: "invalid"; errors: Problem[] }
  | { index: number; status: "unavailable"; detail: string };

export interface BatchIntakeResult {
  accepted: number;
  duplicate: number;
  conflict: number;
  invalid: number;
  unavailable: number;
  results: BatchItemResult[];
}

/** Most stored messages one batch reads back at once to judge its duplicates. */
const MAX_READS_IN_FLIGHT = 32;

function summaryOf(stored: unknown): StoredSummary {
  const metadata = (stored as { metadata?: { messageType?: unknown; messageTime?: unknown } } | null)?.metadata;
  return {
    messageType: typeof metadata?.messageType === "string" ? metadata.messageType : "unknown",
    messageTime: typeof metadata?.messageTime === "string" ? metadata.messageTime : "unknown",
  };
}

export class MessageIntake {
  constructor(
    private readonly publisher: MessagePublisher,
    private readonly metrics: IngestMetrics,
    private readonly log: Logger,
    /** Recognises resends after the duplicate window; without it they are answered as the stream says (accepted). */
    private readonly resends?: ResendCheck,
  ) {}

  /** Validates and stores one message; resolves once the stream acked it, or says why not. */
  async one(input: unknown): Promise<IntakeResult> {
    const validation = validateMessage(input);
    if (!validation.ok) {
      this.metrics.message("invalid");
      return { status: "invalid", errors: validation.problems };
    }
    const through = await this.appliedBefore([validation.value.metadata.channel]);
    const [result] = await this.publisher.publishMany([validation.value]);
    const outcome = this.outcomeOf(result!, true);
    return this.judge(validation.value, outcome, through, true);
  }

  /**
   * Judges what the stream said against what is stored: a duplicate by
   * content, or a new copy of a number `through` (read before publishing)
   * says was applied.
   */
  private judge(message: RocketMessage, outcome: IntakeResult, through: ReadonlyMap<string, number>, log: boolean): Promise<IntakeResult> | IntakeResult {
    if (outcome.status === "duplicate") return this.judgeDuplicate(message, outcome.seq, log);
    if (outcome.status === "accepted") {
      const applied = through.get(message.metadata.channel);
      if (this.resends !== undefined && applied !== undefined && message.metadata.messageNumber <= applied) {
        return this.judgeLate(message, outcome.seq, this.resends);
      }
      return this.accepted(outcome.seq);
    }
    return outcome;
  }

  /**
   * Each channel's applied number, read before its messages are published
   * (see ResendCheck); a channel NATS could not answer for is left out, and
   * its messages are taken as the stream answers.
   */
  private async appliedBefore(channels: readonly string[]): Promise<ReadonlyMap<string, number>> {
    const through = new Map<string, number>();
    const resends = this.resends;
    if (resends === undefined) return through;
    const distinct = [...new Set(channels)];
    let next = 0;
    let failed = 0;
    let firstError: unknown;
    const read = async () => {
      while (next < distinct.length) {
        const channel = distinct[next++]!;
        try {
          through.set(channel, await resends.appliedThrough(channel));
        } catch (err) {
          failed += 1;
          firstError ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_READS_IN_FLIGHT, distinct.length) }, read));
    if (failed > 0) {
      this.metrics.resendCheckFailed(failed);
      this.log.warn({ err: firstError, channels: failed }, "could not read applied numbers; late resends of these channels are taken as the stream answers");
    }
    return through;
  }

  /** Stores every valid item of a batch, pipelined (the publisher bounds how many await an ack); one result per item, in order. */
  async batch(items: readonly unknown[]): Promise<BatchIntakeResult> {
    const outcome: BatchIntakeResult = { accepted: 0, duplicate: 0, conflict: 0, invalid: 0, unavailable: 0, results: new Array(items.length) };
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
    const through = await this.appliedBefore(valid.map((m) => m.metadata.channel));
    const published = await this.publisher.publishMany(valid);
    let logged = false;
    const results: IntakeResult[] = [];
    for (let k = 0; k < published.length; k++) {
      // One log line per batch at most: a refusing stream refuses the whole batch.
      const result = this.outcomeOf(published[k]!, !logged);
      if (result.status === "unavailable") logged ||= result.reason === FailureReason.error;
      results.push(result);
    }
    // Stored items are judged against what is stored, a bounded number at a time.
    const stored = results.flatMap((r, k) => (r.status === "duplicate" || r.status === "accepted" ? [k] : []));
    let next = 0;
    const judge = async () => {
      while (next < stored.length) {
        const k = stored[next++]!;
        results[k] = await this.judge(valid[k]!, results[k]!, through, !logged);
        if (results[k]!.status === "unavailable") logged = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_READS_IN_FLIGHT, stored.length) }, judge));
    results.forEach((result, k) => {
      const index = positions[k]!;
      outcome[result.status] += 1;
      if (result.status === "unavailable") {
        outcome.results[index] = { index, status: result.status, detail: result.detail };
      } else {
        outcome.results[index] = { index, ...result };
      }
    });
    return outcome;
  }

  /**
   * A message the stream called a duplicate of what it stores at `seq`: a
   * duplicate when it says the same, a conflict when it does not; unavailable
   * when the stored message cannot be read now (the client retries, and the
   * judgement is made then). One the stream no longer holds (retention) cannot
   * be compared, and stays what the stream said.
   */
  private async judgeDuplicate(message: RocketMessage, seq: number, log: boolean): Promise<IntakeResult> {
    let stored: unknown;
    try {
      stored = await this.publisher.storedAt(seq);
    } catch (err) {
      return this.failed(err, log);
    }
    if (stored === undefined && this.resends !== undefined) {
      // The copy the stream remembers is gone (a resend removed it, or retention): compare with the first one stored.
      try {
        const earlier = await this.resends.earlierCopy(message.metadata.channel, message.metadata.messageNumber, Number.MAX_SAFE_INTEGER);
        if (earlier.kind === "stored") return this.compared(message, earlier.stored);
      } catch (err) {
        return this.failed(err, log);
      }
    }
    return stored === undefined ? this.duplicate(seq) : this.compared(message, { seq, message: stored });
  }

  /**
   * A message the stream stored as new at `seq` although its number was
   * applied before it was published: a resend after the duplicate window.
   * The copy just stored is removed, and the message is judged against the
   * first one stored under its number.
   */
  private async judgeLate(message: RocketMessage, seq: number, resends: ResendCheck): Promise<IntakeResult> {
    const { channel, messageNumber } = message.metadata;
    this.metrics.lateResend();
    // The sequencer drops this copy as a duplicate number whether or not it is removed; removing it keeps history clean.
    resends.dropCopy(seq).catch((err: unknown) => this.log.warn({ err, seq }, "could not remove a resent copy; the sequencer ignores it"));
    let earlier: Awaited<ReturnType<ResendCheck["earlierCopy"]>>;
    try {
      earlier = await resends.earlierCopy(channel, messageNumber, seq);
    } catch (err) {
      // The number is applied: this copy changes nothing. Whether it says the same cannot be told now.
      this.metrics.resendCheckFailed();
      this.log.warn({ err, channel, messageNumber }, "could not read what is stored under a resent number");
      return this.duplicate(seq);
    }
    if (earlier.kind === "expired") {
      this.metrics.message(MessageResult.conflict);
      return { status: "conflict", seq, stored: summaryOf(undefined) };
    }
    return this.compared(message, earlier.stored);
  }

  private compared(message: RocketMessage, stored: StoredUnder): IntakeResult {
    const v = validateMessage(stored.message);
    if (!v.ok || !sameMessage(v.value, message)) {
      this.metrics.message(MessageResult.conflict);
      return { status: "conflict", seq: stored.seq, stored: summaryOf(stored.message) };
    }
    return this.duplicate(stored.seq);
  }

  private accepted(seq: number): IntakeResult {
    this.metrics.message(MessageResult.accepted);
    return { status: "accepted", seq };
  }

  private duplicate(seq: number): IntakeResult {
    this.metrics.message(MessageResult.duplicate);
    return { status: "duplicate", seq };
  }

  private outcomeOf(result: PublishResult, log: boolean): IntakeResult {
    if (result.ok) {
      this.metrics.publishTook(result.seconds);
      // Counted once judged (judge): a new copy of an applied number is not accepted.
      return { status: result.ack.duplicate ? "duplicate" : "accepted", seq: result.ack.seq };
    }
    // An unavailable stream (not connected, connection lost, no stream) says nothing about its latency; a timeout does.
    if (!(result.error instanceof PublishUnavailableError) || result.error instanceof PublishTimeoutError) {
      this.metrics.publishTook(result.seconds);
    }
    return this.failed(result.error, log);
  }

  private failed(err: unknown, log: boolean): IntakeResult {
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
