// Keeps the fleet view in step with the state bucket: what the watcher
// delivers becomes view changes, with the view's readiness, update lag and
// unreadable entries made visible in logs and metrics.

import type { ChannelState } from "../../internal/domain/sequencing.js";
import type { ChannelStateListener, StateChange } from "../../internal/view/channel-state-listener.js";
import type { Logger } from "../../internal/observability/logger.js";
import type { FleetView } from "../../internal/view/fleet-view.js";
import { InvalidRocketStateError, rocketViewOf, type RocketView } from "../../internal/view/rocket-view.js";
import type { ApiMetrics } from "./metrics.js";

export class ViewFeed implements ChannelStateListener {
  private passStartedAt = 0;

  constructor(
    private readonly view: FleetView,
    private readonly metrics: ApiMetrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  syncStarted(): void {
    this.passStartedAt = this.now();
    this.view.beginSync();
    this.log.info({ rockets: this.view.size }, "view sync pass started");
  }

  syncDone(): void {
    const removed = this.view.endSync();
    this.log.info({ rockets: this.view.size, removed, ms: this.now() - this.passStartedAt }, "view sync pass done");
  }

  stored(channel: string, state: ChannelState, change: StateChange): void {
    let rocket: RocketView | null;
    try {
      rocket = rocketViewOf(channel, state);
    } catch (err) {
      if (!(err instanceof InvalidRocketStateError)) throw err;
      this.unreadable(channel, err, change);
      return;
    }
    // A channel whose launch has not been applied yet is not a rocket yet.
    if (rocket === null) this.view.remove(channel, change.revision);
    else this.view.put(channel, rocket, change.revision);
    this.observeLag(change);
  }

  removed(channel: string, change: StateChange): void {
    this.view.remove(channel, change.revision);
    this.observeLag(change);
  }

  unreadable(channel: string, error: Error, change: StateChange): void {
    this.metrics.unreadableStates.inc();
    // Keep whatever the view last read for it rather than drop a rocket over one bad write.
    this.view.retain(channel);
    this.log.warn({ channel, revision: change.revision, err: error }, "state entry unreadable; view keeps its previous value");
  }

  private observeLag(change: StateChange): void {
    if (change.initial) return;
    this.metrics.viewUpdateLag.observe(Math.max(0, this.now() - change.writtenAt.getTime()) / 1000);
  }
}
