// One simulated sequencer process: the real Sequencer (ownership, partition
// workers, actor registry, channel actors) on the world's ports over its own
// link. A crash ends the incarnation (owner) for good; a restart is a new
// incarnation, with the same instance id or a new one.

import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { Sequencer, type SequencerSettings } from "../../sequencer/sequencer.js";
import type { Link, World } from "./world.js";
import type { Scheduler } from "./scheduler.js";

/** A start that fails (NATS unreachable) is retried after this long, as the service runner does. */
const START_RETRY_MS = 1000;

export class SimInstance {
  readonly link: Link;
  readonly sequencer: Sequencer;
  started = false;
  stopped = false;

  constructor(
    readonly world: World,
    /** This incarnation's owner id in the scheduler (unique per run). */
    readonly owner: string,
    settings: SequencerSettings,
    log: Logger = pino({ level: "silent" }),
  ) {
    this.link = world.link(owner);
    this.sequencer = new Sequencer(
      {
        states: this.link.channelStates(),
        parked: this.link.parkedSource(),
        leases: this.link.leaseStore(),
        partition: (p) => this.link.partitionSource(p),
      },
      settings,
      new Registry(),
      log,
    );
  }

  private get scheduler(): Scheduler {
    return this.world.scheduler;
  }

  get alive(): boolean {
    return !this.scheduler.isDead(this.owner) && !this.stopped;
  }

  /** Starts the instance (as its own code), retrying until it joins. */
  start(): void {
    this.scheduler.schedule(this.owner, 0, () => void this.tryStart());
  }

  private async tryStart(): Promise<void> {
    try {
      await this.sequencer.start();
      this.started = true;
    } catch {
      setTimeout(() => void this.tryStart(), START_RETRY_MS);
    }
  }

  /** SIGKILL: nothing of it runs again; what it held comes back to others after ack_wait and the lease TTL. */
  kill(): void {
    this.scheduler.kill(this.owner);
    this.link.close();
  }

  /** SIGTERM: releases its partitions after finishing what it holds, then is gone. */
  stop(): void {
    this.scheduler.schedule(this.owner, 0, () => {
      const gone = () => {
        this.stopped = true;
        this.kill();
      };
      this.sequencer.stop().then(gone, gone);
    });
  }
}
