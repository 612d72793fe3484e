// How one partition's failing pulls are reported. A pull that fails and works
// on the next try (a missed heartbeat on a busy machine, a consumer being
// recreated) is routine and recovers by itself: it is counted in
// rockets_sequencer_fetch_failures_total and logged at DEBUG, with how many
// pulls failed and for how long once it recovers. An outage that lasts
// PERSISTENT_AFTER_MS is not routine: one WARN when it gets there (not one
// per retry), and one INFO when it ends, with the same count.

import type { Logger } from "../observability/logger.js";

export const PERSISTENT_AFTER_MS = 30_000;

export class FetchOutage {
  private failures = 0;
  private since = 0;
  private warned = false;

  constructor(
    private readonly log: Logger,
    private readonly partition: number,
    private readonly persistentAfterMs = PERSISTENT_AFTER_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  failed(err: unknown): void {
    const t = this.now();
    if (this.failures === 0) this.since = t;
    this.failures += 1;
    const fields = { err, partition: this.partition, failures: this.failures, seconds: Math.round((t - this.since) / 1000) };
    if (!this.warned && t - this.since >= this.persistentAfterMs) {
      this.warned = true;
      this.log.warn(fields, "fetching from the partition keeps failing; retrying");
    } else {
      this.log.debug(fields, "fetching from the partition failed; retrying");
    }
  }

  succeeded(): void {
    if (this.failures === 0) return;
    const fields = { partition: this.partition, failures: this.failures, seconds: Math.round((this.now() - this.since) / 1000) };
    if (this.warned) this.log.info(fields, "fetching from the partition recovered");
    else this.log.debug(fields, "fetching from the partition recovered");
    this.failures = 0;
    this.warned = false;
  }
}
