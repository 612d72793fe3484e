// Injects one planned fault into the running cluster and brings the target
// back, the way it happens in production: a process killed with SIGKILL and
// started again by its supervisor, the node leading the events stream killed
// and restarted on its own store (same ports, same data), a sequencer frozen
// (SIGSTOP, as a stalled VM or a long GC pause) past its lease and then let go.
//
// The target is chosen when the fault starts, synchronously, among members
// that are up at that moment, so two faults starting together never pick the
// same process. Each fault records when it started and when its target was
// back: the run measures settling from the end of the last one.

import { STREAM_NAME } from "../../internal/nats/topology.js";
import type { ChaosCluster, Member } from "./chaos-cluster.js";
import { FaultKind, type PlannedFault } from "./fault-plan.js";
import { sleepUnlessAborted } from "../launch/abortable-sleep.js";
import { bearer, TEST_KEYS } from "../../internal/testing/api-keys.js";

export interface FaultRecord {
  kind: FaultKind;
  /** The process or node it hit, or why it hit nothing. */
  target: string;
  /** Milliseconds since the load started. */
  startedAt: number;
  /** When the target was back (restarted and ready, or continued). */
  endedAt: number;
  skipped: boolean;
}

const sleep = sleepUnlessAborted;

const isUp = (m: Member) => m.want === "up" && !m.starting && m.process.running;

export class FaultInjector {
  private sequencerTurn = 0;
  private ingestTurn = 1;

  constructor(
    private readonly cluster: ChaosCluster,
    /** Milliseconds since the load started. */
    private readonly now: () => number,
    private readonly say: (line: string) => void,
    private readonly signal: AbortSignal,
  ) {}

  /**
   * Injects the fault and resolves once its target is back. `hit` is called
   * as soon as the fault has struck (the process killed or paused), or when
   * there was nothing to hit.
   */
  async inject(fault: PlannedFault, hit: () => void = () => undefined): Promise<FaultRecord> {
    const startedAt = this.now();
    const record = (target: string, skipped = false): FaultRecord => {
      if (skipped) hit();
      return { kind: fault.kind, target, startedAt, endedAt: this.now(), skipped };
    };
    switch (fault.kind) {
      case FaultKind.SequencerKill: {
        const target = this.nextUp(this.cluster.sequencers, "sequencerTurn");
        if (!target) return record("no sequencer up", true);
        await this.killAndRestart(target, fault.downMs, hit);
        return record(target.label);
      }
      case FaultKind.IngestKill: {
        const target = this.nextUp(this.cluster.ingests, "ingestTurn");
        if (!target) return record("no ingest up", true);
        await this.killAndRestart(target, fault.downMs, hit);
        return record(target.label);
      }
      case FaultKind.SequencerPause: {
        const target = await this.busiestSequencer();
        if (!target) return record("no sequencer up", true);
        this.cluster.pause(target);
        hit();
        this.say(`${target.label} paused (SIGSTOP) for ${fault.downMs} ms, past its lease`);
        await sleep(fault.downMs, this.signal);
        this.cluster.resume(target);
        this.say(`${target.label} continued (SIGCONT)`);
        return record(target.label);
      }
      case FaultKind.LeaderKill: {
        const leader = await this.cluster.nats.streamLeader(STREAM_NAME);
        await leader.stop("SIGKILL");
        hit();
        this.say(`nats ${leader.serverName}, leader of ${STREAM_NAME}, killed (SIGKILL)`);
        await sleep(fault.downMs, this.signal);
        if (this.signal.aborted) return record(leader.serverName);
        await leader.launch();
        this.say(`nats ${leader.serverName} restarted on its store and healthy`);
        return record(leader.serverName);
      }
    }
  }

  /** The next member in turn that is up; the choice and its marking happen before any await. */
  private nextUp(members: Member[], turn: "sequencerTurn" | "ingestTurn"): Member | undefined {
    for (let i = 0; i < members.length; i++) {
      const m = members[(this[turn] + i) % members.length]!;
      if (isUp(m)) {
        this[turn] = (this[turn] + i + 1) % members.length;
        m.want = "down";
        return m;
      }
    }
    return undefined;
  }

  private async killAndRestart(target: Member, downMs: number, hit: () => void): Promise<void> {
    await this.cluster.kill(target);
    hit();
    this.say(`${target.label} killed (SIGKILL)`);
    await sleep(downMs, this.signal);
    if (this.signal.aborted) return;
    await this.cluster.bringUp(target);
    this.say(`${target.label} restarted and ready`);
  }

  /** The sequencer owning the most partitions: pausing it strands the most work. */
  private async busiestSequencer(): Promise<Member | undefined> {
    const up = this.cluster.sequencers.filter(isUp);
    const owned = await Promise.all(
      up.map(async (m) => {
        try {
          const res = await fetch(`${m.process.url}/partitions`, { signal: AbortSignal.timeout(2000), headers: bearer(TEST_KEYS.scraper) });
          return ((await res.json()) as { partitions: number[] }).partitions.length;
        } catch {
          return -1;
        }
      }),
    );
    let best: Member | undefined;
    let most = -2;
    up.forEach((m, i) => {
      if (isUp(m) && owned[i]! > most) {
        best = m;
        most = owned[i]!;
      }
    });
    if (best) best.want = "paused";
    return best;
  }
}
