// The one line a chaos run ends with: the verdict first (and the main reason
// when it failed), then what was sent, the faults, the settle time against
// its goal, and how long the run took, so runs can be compared line by line.

import { FaultKind } from "./fault-plan.js";
import type { ChaosResult } from "./scenario.js";

const NAMES: Record<FaultKind, [string, string]> = {
  [FaultKind.SequencerKill]: ["sequencer kill", "sequencer kills"],
  [FaultKind.IngestKill]: ["ingest kill", "ingest kills"],
  [FaultKind.LeaderKill]: ["stream leader kill", "stream leader kills"],
  [FaultKind.SequencerPause]: ["sequencer pause", "sequencer pauses"],
};

const n = (x: number) => x.toLocaleString("en-US");
const plural = (count: number, [one, many]: [string, string]) => `${n(count)} ${count === 1 ? one : many}`;

function duration(ms: number): string {
  const total = Math.round(ms / 1000);
  return total < 60 ? `${total}s` : `${Math.floor(total / 60)}m${String(total % 60).padStart(2, "0")}s`;
}

export function chaosSummaryLine(r: ChaosResult): string {
  const injected = r.faults.filter((f) => !f.skipped);
  const byKind = Object.values(FaultKind)
    .map((kind) => [kind, injected.filter((f) => f.kind === kind).length] as const)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => plural(count, NAMES[kind]));
  const retries = [...r.load.failures.values()].reduce((a, b) => a + b, 0);
  const verdict = r.ok ? "chaos PASS" : `chaos FAIL: ${r.failures[0]}${r.failures.length > 1 ? ` (+${r.failures.length - 1} more)` : ""}`;
  return [
    verdict,
    `${n(r.load.messages)} messages (${n(r.load.duplicates)} sent twice, ${n(retries)} retried) for ${n(r.rockets)} rockets through 2 ingests, ${r.partitions} partitions`,
    `faults: ${n(injected.length)}${byKind.length ? ` (${byKind.join(", ")})` : ""}, ${plural(r.unplannedExits.length, ["unplanned exit", "unplanned exits"])}`,
    r.settleMs === undefined
      ? `not settled (goal ${(r.settleGoalMs / 1000).toFixed(1)} s)`
      : `settled ${(r.settleMs / 1000).toFixed(1)} s after the last fault and message (goal ${(r.settleGoalMs / 1000).toFixed(1)} s), ` +
        `${((r.settleAfterFaultMs ?? r.settleMs) / 1000).toFixed(1)} s after the last fault`,
    ...(r.balance ? [`partition shares ${r.balance.counts.join("/")} (${r.balance.balanced ? "balanced" : "NOT balanced"})`] : []),
    `took ${duration(r.durationMs)}`,
  ].join(" | ");
}
