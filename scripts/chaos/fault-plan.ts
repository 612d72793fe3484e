// When each fault of a chaos run happens, decided up front from the options
// alone (a pure function, so the schedule is the same on every run and can
// be read and tested): a sequencer SIGKILL every `sequencerKillEveryMs`
// through the whole window, and the other faults (leader kills, ingest kills,
// pauses) spread evenly over the first 80% of it, interleaved by kind, so the
// last fault is always a sequencer kill and the slower recoveries (a node's
// restart and the election after it, a pause past the lease) are over before it.

export const FaultKind = {
  SequencerKill: "sequencer-kill",
  IngestKill: "ingest-kill",
  LeaderKill: "leader-kill",
  SequencerPause: "sequencer-pause",
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

export interface PlannedFault {
  /** Milliseconds after the load started. */
  at: number;
  kind: FaultKind;
  /** How long the target stays down (killed) or paused before it is restarted or continued. */
  downMs: number;
}

export interface FaultPlanOptions {
  faultWindowMs: number;
  sequencerKillEveryMs: number;
  leaderKills: number;
  ingestKills: number;
  pauses: number;
  /** The sequencers' lease TTL: a pause lasts twice as long, so the paused instance's leases surely expire. */
  leaseTtlMs: number;
}

/** A killed sequencer comes back at once, as a supervisor would restart it. */
export const SEQUENCER_DOWN_MS = 500;
/** A killed ingest stays away long enough for its load to meet refused connections. */
export const INGEST_DOWN_MS = 1500;
/** A killed node stays away long enough for the others to elect new leaders. */
export const NODE_DOWN_MS = 2000;
/** Share of the window the other faults are spread over. */
const SPREAD = 0.8;

export function planFaults(options: FaultPlanOptions): PlannedFault[] {
  const faults: PlannedFault[] = [];
  for (let at = options.sequencerKillEveryMs; at <= options.faultWindowMs; at += options.sequencerKillEveryMs) {
    faults.push({ at, kind: FaultKind.SequencerKill, downMs: SEQUENCER_DOWN_MS });
  }
  const queues: FaultKind[][] = [
    Array<FaultKind>(options.leaderKills).fill(FaultKind.LeaderKill),
    Array<FaultKind>(options.ingestKills).fill(FaultKind.IngestKill),
    Array<FaultKind>(options.pauses).fill(FaultKind.SequencerPause),
  ];
  const others: FaultKind[] = [];
  while (queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      const kind = q.shift();
      if (kind) others.push(kind);
    }
  }
  // Leader kills go first and last among the others: the two node restarts are as far apart as possible.
  if (options.leaderKills >= 2) {
    const lastLeader = others.lastIndexOf(FaultKind.LeaderKill);
    others.splice(lastLeader, 1);
    others.push(FaultKind.LeaderKill);
  }
  others.forEach((kind, j) => {
    const at = Math.round((options.faultWindowMs * SPREAD * (j + 0.5)) / others.length);
    const downMs = kind === FaultKind.LeaderKill ? NODE_DOWN_MS : kind === FaultKind.IngestKill ? INGEST_DOWN_MS : 2 * options.leaseTtlMs;
    faults.push({ at, kind, downMs });
  });
  return faults.sort((a, b) => a.at - b.at);
}
