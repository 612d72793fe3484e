// The ingest service's own metrics (request counts and latency by route come
// from registerServiceRoutes). Label values are fixed sets, never a channel id.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../../internal/observability/metrics.js";

export const MessageResult = { accepted: "accepted", duplicate: "duplicate", conflict: "conflict", invalid: "invalid" } as const;
export type MessageResult = (typeof MessageResult)[keyof typeof MessageResult];

export const FailureReason = { timeout: "timeout", unavailable: "unavailable", error: "error" } as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

export class IngestMetrics {
  private readonly messages: Counter<"result">;
  private readonly failures: Counter<"reason">;
  private readonly publishDuration: Histogram;
  private readonly lateResends: Counter;
  private readonly resendsUnchecked: Counter<"reason">;
  private readonly unlaunched: Counter;
  private readonly byResult: Record<MessageResult, Counter.Internal>;
  private readonly byReason: Record<FailureReason, Counter.Internal>;

  constructor(registry: Registry, natsConnected: () => boolean) {
    this.messages = new Counter({
      name: `${METRIC_PREFIX}ingest_messages_total`,
      help: "Messages received, by result: accepted (stored), duplicate (already stored), conflict (another message stored under its number; refused), invalid (rejected)",
      labelNames: ["result"],
      registers: [registry],
    });
    this.failures = new Counter({
      name: `${METRIC_PREFIX}ingest_publish_failures_total`,
      help: "Publishes that did not get the stream's ack, by reason",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.unlaunched = new Counter({
      name: `${METRIC_PREFIX}ingest_unlaunched_refused_total`,
      help: "Messages of channels that have not launched answered 503 because too many such channels sent at once (UNLAUNCHED_ADMISSION_*); not stored",
      registers: [registry],
    });
    this.publishDuration = new Histogram({
      name: `${METRIC_PREFIX}ingest_publish_duration_seconds`,
      help: "Time from publishing a message to the stream's ack (or failure)",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    this.lateResends = new Counter({
      name: `${METRIC_PREFIX}ingest_late_resends_total`,
      help: "Messages whose number the channel had already applied (resent after the duplicate window, or retried): answered duplicate or conflict from what is stored, not published again",
      registers: [registry],
    });
    this.resendsUnchecked = new Counter({
      name: `${METRIC_PREFIX}ingest_resends_unchecked_total`,
      help: "Messages published without checking whether their number was applied, by reason: unavailable (NATS could not say), busy (too many stored-message reads at once)",
      labelNames: ["reason"],
      registers: [registry],
    });
    new Gauge({
      name: `${METRIC_PREFIX}ingest_nats_connected`,
      help: "1 while connected to NATS, else 0 (with several workers: 1 only while every worker is)",
      registers: [registry],
      aggregator: "min",
      collect() {
        this.set(natsConnected() ? 1 : 0);
      },
    });
    this.byResult = {
      accepted: this.messages.labels(MessageResult.accepted),
      duplicate: this.messages.labels(MessageResult.duplicate),
      conflict: this.messages.labels(MessageResult.conflict),
      invalid: this.messages.labels(MessageResult.invalid),
    };
    this.byReason = {
      timeout: this.failures.labels(FailureReason.timeout),
      unavailable: this.failures.labels(FailureReason.unavailable),
      error: this.failures.labels(FailureReason.error),
    };
    // Every series exists from the start, so rate() and alerts see a 0 rather than nothing.
    for (const child of [...Object.values(this.byResult), ...Object.values(this.byReason)]) child.inc(0);
    for (const reason of ["unavailable", "busy"]) this.resendsUnchecked.labels(reason).inc(0);
  }

  message(result: MessageResult, count = 1): void {
    this.byResult[result].inc(count);
  }

  publishFailed(reason: FailureReason): void {
    this.byReason[reason].inc();
  }

  lateResend(): void {
    this.lateResends.inc();
  }

  resendUnchecked(reason: "unavailable" | "busy"): void {
    this.resendsUnchecked.inc({ reason });
  }

  publishTook(seconds: number): void {
    this.publishDuration.observe(seconds);
  }

  unlaunchedRefused(): void {
    this.unlaunched.inc();
  }
}
