// `npm run chaos [-- flags]`: the chaos scenario from the command line.
// Wiring only: parse the flags, run the scenario with a narrated timeline on
// stderr, print each check, the log tails when it failed, and the summary
// line on stdout. Exit 0 when everything verified, 1 when not, 2 for bad
// flags, 130 when interrupted (after stopping everything it started).

import { CHAOS_USAGE, parseChaosFlags } from "./options.js";
import type { ChaosCluster } from "./chaos-cluster.js";
import { runChaos } from "./scenario.js";
import { chaosSummaryLine } from "./summary.js";

async function main(): Promise<number> {
  const parsed = parseChaosFlags(process.argv.slice(2));
  if (!parsed.ok) {
    for (const p of parsed.problems) process.stderr.write(`error: ${p}\n`);
    process.stderr.write(CHAOS_USAGE);
    return parsed.help ? 0 : 2;
  }

  const abort = new AbortController();
  let cluster: ChaosCluster | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      process.stderr.write(`${signal} again: killing everything now\n`);
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`${signal}: stopping everything (${signal} again to kill at once)\n`);
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Last resort: the services and nodes must not outlive this process, however it ends.
  process.on("exit", () => {
    for (const pid of cluster?.pids() ?? []) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });

  const result = await runChaos(parsed.options, {
    say: (line) => process.stderr.write(`chaos ${line}\n`),
    signal: abort.signal,
    onCluster: (c) => (cluster = c),
  });

  for (const c of result.checks) process.stderr.write(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}\n`);
  for (const e of result.unplannedExits) process.stderr.write(`  unplanned exit of ${e.label} at +${(e.at / 1000).toFixed(1)}s: ${e.detail}\n`);
  if (!result.ok) {
    for (const f of result.failures) process.stderr.write(`  failure: ${f}\n`);
    if (result.logTails) process.stderr.write(`\nlast lines of every log:\n${result.logTails}\n`);
  }
  process.stderr.write(`whole logs: ${result.logsDir}\n`);
  process.stdout.write(`${chaosSummaryLine(result)}\n`);
  if (interrupted) return 130;
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
