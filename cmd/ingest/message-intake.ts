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
// per duplicate, none for a new message. After the window the stream would
// store a resend again as new: so before publishing, a message whose number
// the channel already applied is judged against the message first stored
// under that number, the same way, and not published (see resend-check.ts
// for what this costs and covers).

import { sameMessage, validateMessage, type Problem, type RocketMessage } from "../../internal/domain/message.js";
import {
  PublishTimeoutError,
  PublishUnavailableError,
  type MessagePublisher,
  type PublishError,
  type PublishResult,
} from "../../internal/ingest/message-publisher.js";
import type { Logger } from "../../internal/observability/logger.js";
import { FailureReason, MessageResult, type IngestMetrics } from "./metrics.js";
import { ResendUncheckedError, type PriorCopy, type ResendCheck } from "./resend-check.js";
import type { UnlaunchedAdmission } from "./unlaunched-admission.js";

/** What is stored under a message number a resend conflicts with: enough to recognise it, not the whole message. */
export interface StoredSummary {
  messageType: string;
  messageTime: string;
}

/** What became of one message posted on its own. */
export type IntakeResult =
  | { status: "accepted" | "duplicate"; seq: number }
  | { status: "conflict"; seq: number; stored: StoredSummary }
  | { status: "invalid"; errors: Problem[] }
  | { status: "unavailable"; reason: FailureReason; detail: string };

/** What became of one item of a batch: an IntakeResult naming its index (an unavailable item's reason is only counted). */
export type BatchItemResult =
  | { index: number; status: "accepted" | "duplicate"; seq: number }
  | { index: number; status: "conflict"; seq: number; stored: StoredSummary }
  | { index: number; status: "invalid"; errors: Problem[] }
  | { index: number; status: "unavailable"; detail: string };

/** What became of a batch: one result per item, in order, and how many came to each status. */
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

/** Runs `task(0..count-1)`, at most MAX_READS_IN_FLIGHT at once. */
async function inTurns(count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(MAX_READS_IN_FLIGHT, count) }, worker));
}

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
    /** Recognises resends after the duplicate window; without it they are answered as the stream says. */
    private readonly resends?: ResendCheck,
    /** Bounds the channels that have not launched this process stores messages for. */
    private readonly admission?: UnlaunchedAdmission,
  ) {}

  /** Validates and stores one message; resolves once the stream acked it, or says why not. */
  async one(input: unknown): Promise<IntakeResult> {
    const validation = validateMessage(input);
    if (!validation.ok) {
      this.metrics.message("invalid");
      return { status: "invalid", errors: validation.problems };
    }
    const prior = await this.priorCopy(validation.value);
    if (prior !== undefined) return prior;
    const result = this.resultOf(await this.publisher.publish(validation.value), true);
    return result.status === "duplicate" ? this.judgeDuplicate(validation.value, result.seq, true) : result;
  }

  /** Stores every valid item of a batch, pipelined (the publisher bounds how many await an ack); one result per item, in order. */
  async batch(items: readonly unknown[]): Promise<BatchIntakeResult> {
    const answer: BatchIntakeResult = { accepted: 0, duplicate: 0, conflict: 0, invalid: 0, unavailable: 0, results: new Array(items.length) };
    const valid: RocketMessage[] = [];
    const positions: number[] = [];
    for (let index = 0; index < items.length; index++) {
      const validation = validateMessage(items[index]);
      if (validation.ok) {
        valid.push(validation.value);
        positions.push(index);
      } else {
        answer.invalid += 1;
        answer.results[index] = { index, status: "invalid", errors: validation.problems };
      }
    }
    if (answer.invalid > 0) this.metrics.message("invalid", answer.invalid);
    const results: (IntakeResult | undefined)[] = new Array(valid.length);
    // Numbers already applied are answered from what is stored, and not published again.
    await inTurns(valid.length, async (k) => {
      results[k] = await this.priorCopy(valid[k]!);
    });
    const toPublish = valid.flatMap((_, k) => (results[k] === undefined ? [k] : []));
    const published = await this.publisher.publishMany(toPublish.map((k) => valid[k]!));
    let logged = false;
    published.forEach((result, i) => {
      // One log line per batch at most: a refusing stream refuses the whole batch.
      const r = this.resultOf(result, !logged);
      if (r.status === "unavailable") logged ||= r.reason === FailureReason.error;
      results[toPublish[i]!] = r;
    });
    // Duplicates are judged against what is stored, a bounded number at a time.
    const duplicates = toPublish.filter((k) => results[k]!.status === "duplicate");
    await inTurns(duplicates.length, async (i) => {
      const k = duplicates[i]!;
      results[k] = await this.judgeDuplicate(valid[k]!, (results[k] as { seq: number }).seq, !logged);
      if (results[k]!.status === "unavailable") logged = true;
    });
    results.forEach((result, k) => {
      const index = positions[k]!;
      answer[result!.status] += 1;
      if (result!.status === "unavailable") {
        answer.results[index] = { index, status: result!.status, detail: result!.detail };
      } else {
        answer.results[index] = { index, ...result! };
      }
    });
    return answer;
  }

  /**
   * A message whose number the channel already applied (a resend after the
   * duplicate window, or a retry): judged against the message first stored
   * under the number, never published again. Undefined when the number is
   * not applied, or when that cannot be told now (then the stream's own
   * deduplication, and the sequencer, stand; counted).
   */
  private async priorCopy(message: RocketMessage): Promise<IntakeResult | undefined> {
    if (this.resends === undefined) return undefined;
    let prior: PriorCopy | undefined;
    try {
      prior = await this.resends.priorCopy(message);
    } catch (err) {
      // Its state could not be read: the bound never refuses what it cannot judge.
      const reason = err instanceof ResendUncheckedError ? err.reason : "unavailable";
      this.metrics.resendUnchecked(reason);
      if (reason === "unavailable") this.log.warn({ err }, "could not tell whether a message resends an applied number; publishing it");
      return undefined;
    }
    if (prior === undefined) return this.admitted(message);
    this.metrics.lateResend();
    if (prior.kind === "expired") {
      this.metrics.message(MessageResult.conflict);
      return { status: "conflict", seq: 0, stored: summaryOf(undefined) };
    }
    return this.compared(message, prior.stored.seq, prior.stored.message);
  }

  /**
   * A message of a channel that has not launched (its state, as the late-resend
   * check just read it, applied nothing) is stored only while the admission
   * bound lets its channel in; its launch always is, and admits the channel.
   */
  private admitted(message: RocketMessage): IntakeResult | undefined {
    if (this.admission === undefined) return undefined;
    const { channel, messageNumber } = message.metadata;
    if (messageNumber === 1) {
      this.admission.launched(channel);
      return undefined;
    }
    if (this.resends?.appliedThrough(channel) !== 0 || this.admission.admit(channel)) return undefined;
    this.metrics.unlaunchedRefused();
    return {
      status: "unavailable",
      reason: FailureReason.unavailable,
      detail: `too many channels that have not launched send messages right now: send ${channel}'s launch (message 1) first, or retry later`,
    };
  }

  /**
   * A message the stream called a duplicate of what it stores at `seq`: a
   * duplicate when it says the same, a conflict when it does not; unavailable
   * when the stored message cannot be read now (the client retries, and the
   * judgement is made then). One the stream no longer holds (retention) cannot
   * be compared, and stays what the stream said.
   */
  private async judgeDuplicate(message: RocketMessage, seq: number, log: boolean): Promise<IntakeResult> {
    const stored = await this.publisher.storedAt(seq);
    if (!stored.ok) return this.failed(stored.error, log);
    if (stored.document === undefined) {
      this.metrics.message(MessageResult.duplicate);
      return { status: "duplicate", seq };
    }
    return this.compared(message, seq, stored.document);
  }

  /** The same message as the one stored at `seq` is a duplicate; any other is a conflict naming what is stored. */
  private compared(message: RocketMessage, seq: number, stored: unknown): IntakeResult {
    const v = validateMessage(stored);
    if (!v.ok || !sameMessage(v.value, message)) {
      this.metrics.message(MessageResult.conflict);
      return { status: "conflict", seq, stored: summaryOf(stored) };
    }
    this.metrics.message(MessageResult.duplicate);
    return { status: "duplicate", seq };
  }

  private resultOf(result: PublishResult, log: boolean): IntakeResult {
    if (result.ok) {
      this.metrics.publishTook(result.seconds);
      if (result.ack.duplicate) return { status: "duplicate", seq: result.ack.seq };
      this.metrics.message(MessageResult.accepted);
      return { status: "accepted", seq: result.ack.seq };
    }
    // An unavailable stream (not connected, connection lost, no stream) says nothing about its latency; a timeout does.
    if (!(result.error instanceof PublishUnavailableError) || result.error instanceof PublishTimeoutError) {
      this.metrics.publishTook(result.seconds);
    }
    return this.failed(result.error, log);
  }

  private failed(err: PublishError, log: boolean): IntakeResult {
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
