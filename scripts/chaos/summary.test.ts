import { describe, expect, it } from "vitest";
import { FaultKind } from "./fault-plan.js";
import type { ChaosResult } from "./scenario.js";
import { chaosSummaryLine } from "./summary.js";

const fault = (kind: FaultKind, skipped = false) => ({ kind, target: "x", startedAt: 0, endedAt: 1, skipped });

const passed: ChaosResult = {
  ok: true,
  failures: [],
  checks: [],
  faults: [
    fault(FaultKind.SequencerKill),
    fault(FaultKind.SequencerKill),
    fault(FaultKind.SequencerKill, true),
    fault(FaultKind.LeaderKill),
    fault(FaultKind.IngestKill),
    fault(FaultKind.SequencerPause),
  ],
  unplannedExits: [{ label: "seq-2", at: 1, detail: "" }],
  load: { rounds: 12, posts: 25_530, messages: 24_310, duplicates: 1220, failures: new Map([["503", 40], ["ECONNREFUSED", 2]]), lastPostAt: 0 },
  rockets: 1200,
  partitions: 16,
  settleMs: 4420,
  settleAfterFaultMs: 5130,
  settleGoalMs: 5000,
  balance: { balanced: true, counts: [6, 5, 5], shares: "seq-1 6, seq-2 5, seq-3 5", afterMs: 1200 },
  durationMs: 114_000,
  logsDir: "/tmp/chaos",
  logTails: undefined,
};

describe("chaosSummaryLine", () => {
  it("says what was sent, each kind of fault injected, the settle time against its goal, and the duration, on one line", () => {
    expect(chaosSummaryLine(passed)).toBe(
      "chaos PASS | 24,310 messages (1,220 sent twice, 42 retried) for 1,200 rockets through 2 ingests, 16 partitions" +
        " | faults: 5 (2 sequencer kills, 1 ingest kill, 1 stream leader kill, 1 sequencer pause), 1 unplanned exit" +
        " | settled 4.4 s after the last fault and message (goal 5.0 s), 5.1 s after the last fault | partition shares 6/5/5 (balanced) | took 1m54s",
    );
  });

  it("leads with the first reason of a failure and how many more there are", () => {
    const line = chaosSummaryLine({ ...passed, ok: false, failures: ["api-2: 3 of 1200 rockets off", "consumers: not drained"], settleMs: undefined, settleAfterFaultMs: undefined, balance: undefined, durationMs: 42_000 });
    expect(line).toMatch(/^chaos FAIL: api-2: 3 of 1200 rockets off \(\+1 more\) \| /);
    expect(line).toContain("| not settled (goal 5.0 s) | took 42s");
    expect(line.split("\n")).toHaveLength(1);
  });
});
