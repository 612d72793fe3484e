// `npm run launch -- <url> [flags]`: the load program's command line. Wiring
// only: parse the flags, run the launch, print the summary, and exit non-zero
// when the flags are wrong or the final state did not verify.

import { parseFlags, USAGE } from "./flags.js";
import { existingDataHint, runLaunch } from "./launch.js";
import { createLog } from "./log.js";
import { summaryLine } from "./progress.js";

const MAX_MISMATCHES_SHOWN = 20;

async function main(): Promise<number> {
  const parsed = parseFlags(process.argv.slice(2));
  if (!parsed.ok) {
    for (const p of parsed.problems) process.stderr.write(`error: ${p}\n`);
    process.stderr.write(USAGE);
    return parsed.help ? 0 : 2;
  }
  const options = { ...parsed.options, key: parsed.options.key ?? (process.env["ROCKETS_API_KEY"] || undefined) };
  const log = createLog(options.logLevel);
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);

  const result = await runLaunch(options, { log, progress: true, signal: abort.signal });
  for (const m of result.mismatches.slice(0, MAX_MISMATCHES_SHOWN)) {
    log.error(`rocket ${m.channel}: ${m.problems.join("; ")}`);
  }
  if (result.mismatches.length > MAX_MISMATCHES_SHOWN) {
    log.error(`... and ${result.mismatches.length - MAX_MISMATCHES_SHOWN} more rockets off`);
  }
  const hint = existingDataHint(result, options.seed);
  if (hint) log.error(hint);
  process.stdout.write(`${summaryLine(result)}\n`);
  return result.verify && !result.verify.ok ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
