// What the load program says about a target that does not take its
// messages. The operators' program retries forever, silently; a person who
// pointed it at the wrong URL, or started it before the system, should hear
// it at once:
// - a target that cannot be reached at all (connection refused, unknown
//   host) is a WARN at the first failed attempt, naming the URL and saying
//   what to check;
// - any failure (503s, timeouts...) that lasts `repeatMs` without a single
//   message accepted is a WARN then, and again every `repeatMs`, with the
//   failures by cause;
// - once messages are accepted again after a warning, an INFO says so.

import type { Log } from "./log.js";

/** Failures that mean nothing answers at that address. */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: "connection refused: nothing listens there",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

export class TargetWatch {
  private failingSince: number | undefined;
  private failures = new Map<string, number>();
  private warnedAt: number | undefined;

  constructor(
    private readonly url: string,
    private readonly log: Log,
    private readonly retryDelayMs: number,
    private readonly repeatMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  failed(why: string): void {
    const t = this.now();
    if (this.failingSince === undefined) this.failingSince = t;
    this.failures.set(why, (this.failures.get(why) ?? 0) + 1);
    const unreachable = UNREACHABLE[why];
    if (this.warnedAt === undefined && unreachable !== undefined) {
      this.warnedAt = t;
      this.log.warn(
        `cannot reach ${this.url} (${why}, ${unreachable}): is the system running there (npm start)? ` +
          `Retrying every ${this.retryDelayMs} ms until it answers; Ctrl-C stops.`,
      );
      return;
    }
    if (t - this.failingSince >= this.repeatMs && (this.warnedAt === undefined || t - this.warnedAt >= this.repeatMs)) {
      this.warnedAt = t;
      const causes = [...this.failures].map(([cause, n]) => `${cause} x${n}`).join(", ");
      this.log.warn(`no message accepted by ${this.url} for ${Math.round((t - this.failingSince) / 1000)} s (${causes}); still retrying`);
    }
  }

  succeeded(): void {
    if (this.failingSince === undefined) return;
    if (this.warnedAt !== undefined) {
      this.log.info(`${this.url} accepts messages again after ${Math.round((this.now() - this.failingSince) / 1000)} s`);
    }
    this.failingSince = undefined;
    this.warnedAt = undefined;
    this.failures.clear();
  }
}
