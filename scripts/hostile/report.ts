// The hostile run's table: one row per attack with the legit update latency,
// peak memory per process against its Kubernetes limit, and the verdict;
// then each attack's checks, failed ones first.

import { PROCESS_NAMES } from "./memory.js";
import type { AttackResult } from "./run.js";

const MiB = 2 ** 20;
const ms = (v: number) => (Number.isNaN(v) ? "-" : Number.isFinite(v) ? `${Math.round(v)}` : "timeout");

export function reportTable(results: readonly AttackResult[]): string {
  const header = ["attack", "legit n", "p50 ms", "p99 ms", "exact", ...PROCESS_NAMES.map((p) => `${p} MiB`), "verdict"];
  const rows = results.map((r) => [
    `(${r.key}) ${r.title}`,
    String(r.legit.updates),
    ms(r.legit.p50),
    ms(r.legit.p99),
    r.exactProblems.length === 0 ? "yes" : `NO (${r.exactProblems.length})`,
    ...PROCESS_NAMES.map((p) => `${Math.round(r.peaks[p] / MiB)}/${Math.round(r.limits[p] / MiB)}`),
    r.pass ? "PASS" : "FAIL",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line), ""];
  for (const r of results) {
    const before = [r.drained, r.setup && `setup: ${r.setup}`].filter(Boolean).join("; ");
    out.push(`(${r.key}) ${r.title}: ${r.pass ? "PASS" : "FAIL"} (${r.seconds.toFixed(1)} s)${before ? `; ${before}` : ""}`);
    for (const c of [...r.checks].sort((a, b) => Number(a.ok) - Number(b.ok))) out.push(`    ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  }
  const passed = results.filter((r) => r.pass).length;
  out.push("", `${passed}/${results.length} attacks passed (legit p99 <= 1000 ms, every legit rocket exact, RSS under the k8s limits, the attack's own checks)`);
  return out.join("\n");
}
