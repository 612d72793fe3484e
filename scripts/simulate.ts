// `npm run simulate`: the deterministic simulation of the sequencer.
//
//   npm run simulate -- --seed 42 [--profile skip]     replays one run, prints its trace when it fails (--trace: always)
//   npm run simulate -- --seeds 100000 [--from 1] [--profile all|mixed|skip|...]
//                                                      a long search (every profile in turn unless one is named):
//                                                      a progress line, then failures by invariant
//   npm run simulate -- --regressions                  the runs that once failed (regressions.ts), each must pass
//
// Exit 0 only when every run kept every invariant. A failing run prints the
// one command that replays it exactly.

import { PROFILES, optionsFor } from "../internal/testing/simulation/options.js";
import { REGRESSIONS } from "../internal/testing/simulation/regressions.js";
import { simulate, type SimResult } from "../internal/testing/simulation/run.js";

interface Args {
  seed?: number;
  seeds?: number;
  from: number;
  /** Unset: "mixed" for one seed, "all" (every profile in turn) for a search. */
  profile?: string;
  trace: boolean;
  grep?: string;
  regressions: boolean;
}

function parse(argv: string[]): Args {
  const args: Args = { from: 1, trace: false, regressions: false };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--seed") args.seed = Number(value());
    else if (a === "--seeds") args.seeds = Number(value());
    else if (a === "--from") args.from = Number(value());
    else if (a === "--profile") args.profile = value();
    else if (a === "--trace") args.trace = true;
    else if (a === "--grep") args.grep = value();
    else if (a === "--regressions") args.regressions = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (args.profile !== undefined && args.profile !== "all" && !(args.profile in PROFILES)) throw new Error(`unknown profile ${args.profile}: one of all, ${Object.keys(PROFILES).join(", ")}`);
  return args;
}

function replayCommand(r: SimResult): string {
  return `npm run simulate -- --seed ${r.seed}${r.profile === "mixed" ? "" : ` --profile ${r.profile}`}`;
}

function describe(r: SimResult): string {
  const f = Object.entries(r.stats.faults)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return `${r.stats.messagesStored} messages stored, ${(r.stats.virtualMs / 1000).toFixed(1)} s virtual, ${r.stats.steps} events, faults: ${f || "none"}, takeovers ${r.stats.takeovers}, max gap ${r.stats.maxGap}`;
}

async function regressions(): Promise<number> {
  let failed = 0;
  for (const r of REGRESSIONS) {
    const result = await simulate(optionsFor(r.seed, r.profile));
    if (!result.ok) failed += 1;
    console.log(`${result.ok ? "PASS" : "FAIL"} ${replayCommand(result)}: ${result.ok ? r.found.split(":")[0] : `${result.violations[0]!.invariant}: ${result.violations[0]!.detail}`}`);
  }
  console.log(`[simulate] ${REGRESSIONS.length - failed} of ${REGRESSIONS.length} regression runs pass`);
  return failed === 0 ? 0 : 1;
}

async function one(args: Args, seed: number): Promise<number> {
  const profile = args.profile === undefined || args.profile === "all" ? "mixed" : args.profile;
  const options = optionsFor(seed, profile);
  const result = await simulate(options, { trace: true });
  const show = args.trace || !result.ok;
  if (show && result.trace) {
    const lines = args.grep ? result.trace.filter((l) => l.includes(args.grep!)) : result.trace;
    for (const line of lines) console.log(line);
  }
  console.log(JSON.stringify({ ...options, seed: undefined }));
  console.log(`${result.ok ? "PASS" : "FAIL"} seed ${seed} (profile ${profile}): ${describe(result)}`);
  for (const v of result.violations) console.log(`  ${v.invariant}: ${v.detail}`);
  if (!result.ok) console.log(`replay: ${replayCommand(result)}`);
  return result.ok ? 0 : 1;
}

async function search(args: Args, count: number): Promise<number> {
  const profiles = args.profile === undefined || args.profile === "all" ? Object.keys(PROFILES) : [args.profile];
  const started = Date.now();
  let lastProgress = started;
  const failures: SimResult[] = [];
  const byInvariant = new Map<string, number>();
  const totals = { runs: 0, messages: 0, virtualMs: 0, takeovers: 0, maxGap: 0, faults: {} as Record<string, number> };
  for (let i = 0; i < count; i += 1) {
    const seed = args.from + i;
    const profile = profiles[seed % profiles.length]!;
    const result = await simulate(optionsFor(seed, profile));
    totals.runs += 1;
    totals.messages += result.stats.messagesStored;
    totals.virtualMs += result.stats.virtualMs;
    totals.takeovers += result.stats.takeovers;
    totals.maxGap = Math.max(totals.maxGap, result.stats.maxGap);
    for (const [k, v] of Object.entries(result.stats.faults)) totals.faults[k] = (totals.faults[k] ?? 0) + v;
    if (!result.ok) {
      failures.push(result);
      for (const inv of new Set(result.violations.map((v) => v.invariant))) byInvariant.set(inv, (byInvariant.get(inv) ?? 0) + 1);
      console.log(`FAIL ${replayCommand(result)}: ${result.violations[0]!.invariant}: ${result.violations[0]!.detail}`);
    }
    const now = Date.now();
    if (now - lastProgress >= 5000 || i === count - 1) {
      lastProgress = now;
      const rate = totals.runs / ((now - started) / 1000);
      const eta = (count - totals.runs) / rate;
      console.log(`[simulate] ${totals.runs}/${count} runs, ${failures.length} failed, ${rate.toFixed(1)} runs/s, ETA ${eta.toFixed(0)} s`);
    }
  }
  const took = (Date.now() - started) / 1000;
  const faults = Object.entries(totals.faults)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(
    `[simulate] ${totals.runs} runs (profiles ${profiles.join(", ")}, seeds ${args.from}..${args.from + count - 1}) in ${took.toFixed(0)} s: ` +
      `${totals.messages} messages stored, ${(totals.virtualMs / 3_600_000).toFixed(1)} h virtual, faults injected: ${faults}, takeovers ${totals.takeovers}, max gap ${totals.maxGap}`,
  );
  if (failures.length === 0) {
    console.log("[simulate] PASS: every run kept every invariant");
    return 0;
  }
  console.log(`[simulate] FAIL: ${failures.length} runs failed; by invariant: ${[...byInvariant].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  return 1;
}

const args = parse(process.argv.slice(2));
const code = args.regressions ? await regressions() : args.seeds !== undefined ? await search(args, args.seeds) : await one(args, args.seed ?? 1);
process.exit(code);
