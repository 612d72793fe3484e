import { describe, expect, it } from "vitest";
import { FaultKind, planFaults, SEQUENCER_DOWN_MS } from "./fault-plan.js";

const ISSUE = { faultWindowMs: 40_000, sequencerKillEveryMs: 5000, leaderKills: 2, ingestKills: 1, pauses: 1, leaseTtlMs: 2000 };

describe("planFaults", () => {
  it("kills a sequencer every interval through the window and spreads the other faults over its first 80%", () => {
    const plan = planFaults(ISSUE);
    expect(plan.filter((f) => f.kind === FaultKind.SequencerKill).map((f) => f.at)).toEqual([5000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000]);
    expect(plan.filter((f) => f.kind !== FaultKind.SequencerKill).map((f) => [f.at, f.kind])).toEqual([
      [4000, FaultKind.LeaderKill],
      [12_000, FaultKind.IngestKill],
      [20_000, FaultKind.SequencerPause],
      [28_000, FaultKind.LeaderKill],
    ]);
    expect(plan.map((f) => f.at)).toEqual([...plan.map((f) => f.at)].sort((a, b) => a - b));
  });

  it("ends with a sequencer kill and pauses past the lease", () => {
    const plan = planFaults({ ...ISSUE, faultWindowMs: 16_000 });
    expect(plan.at(-1)).toEqual({ at: 15_000, kind: FaultKind.SequencerKill, downMs: SEQUENCER_DOWN_MS });
    const pause = plan.find((f) => f.kind === FaultKind.SequencerPause)!;
    expect(pause.downMs).toBeGreaterThan(ISSUE.leaseTtlMs);
  });

  it("has one fault of each kind asked for, and none of a kind asked for zero times", () => {
    const count = (plan: ReturnType<typeof planFaults>, kind: FaultKind) => plan.filter((f) => f.kind === kind).length;
    const plan = planFaults({ ...ISSUE, leaderKills: 3, ingestKills: 2, pauses: 0 });
    expect(count(plan, FaultKind.LeaderKill)).toBe(3);
    expect(count(plan, FaultKind.IngestKill)).toBe(2);
    expect(count(plan, FaultKind.SequencerPause)).toBe(0);
  });
});
