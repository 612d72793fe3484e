// One hostile run: starts the real system (nats-server and the three
// services as processes, test/rockets-system.ts), then for each attack:
// setup (not measured), legit rockets in every partition posting while the
// attack runs, then the legit rockets stopped and checked exactly. Memory of
// every process is sampled throughout. Each attack passes only when legit
// p99 <= 1 s with no timeout, every legit rocket is exact, every process
// stays under its Kubernetes memory limit, and the attack's own checks hold.
// Everything runs on loopback and ends, whatever happens, with every process
// stopped.

import { RocketsSystem } from "../../test/rockets-system.js";
import { metricValue } from "../../internal/testing/metrics.js";
import { attackerAddress, closeAgents } from "./client.js";
import { ATTACKS, type Attack, type AttackContext, type Check } from "./attacks.js";
import { LegitFleet, quantile, slowest, type LegitRun } from "./legit.js";
import { channelsPerPartition } from "./messages.js";
import { kubernetesMemoryLimits, MemorySampler, PROCESS_NAMES, type ProcessName } from "./memory.js";
import { LEGIT_P99_BOUND_MS, type Profile } from "./profile.js";

export interface AttackResult {
  key: string;
  title: string;
  /** How the backlog of the attacks before was drained before this one began. */
  drained?: string;
  setup?: string;
  legit: { updates: number; p50: number; p99: number; timeouts: number; refusedPosts: number; slowest: string };
  exactProblems: string[];
  peaks: Record<ProcessName, number>;
  limits: Record<ProcessName, number>;
  checks: Check[];
  pass: boolean;
  seconds: number;
}

export interface RunOptions {
  /** Attack keys to run (a..g); all when undefined. */
  only?: readonly string[];
  log?: (line: string) => void;
  /** More environment for every service (e.g. the keys the services accept, once they require one). */
  env?: Record<string, string>;
}

/** Common checks of one attack: legit latency, exactness, memory. */
function commonChecks(r: Omit<AttackResult, "checks" | "pass">): Check[] {
  const memory = PROCESS_NAMES.filter((p) => r.peaks[p] >= r.limits[p]);
  return [
    {
      name: "legit p99",
      ok: r.legit.updates > 0 && r.legit.timeouts === 0 && r.legit.p99 <= LEGIT_P99_BOUND_MS,
      detail: `${r.legit.p99.toFixed(0)} ms over ${r.legit.updates} updates, ${r.legit.timeouts} not visible in time (bound ${LEGIT_P99_BOUND_MS} ms); slowest: ${r.legit.slowest}`,
    },
    { name: "legit exact", ok: r.exactProblems.length === 0, detail: r.exactProblems.length === 0 ? "every accepted message applied once, in order" : r.exactProblems.slice(0, 3).join("; ") },
    { name: "memory under k8s limits", ok: memory.length === 0, detail: memory.length === 0 ? "all" : `over: ${memory.join(", ")}` },
  ];
}

export async function runHostile(profile: Profile, options: RunOptions = {}): Promise<AttackResult[]> {
  const log = options.log ?? (() => undefined);
  const attacks = ATTACKS.filter((a) => options.only === undefined || options.only.includes(a.key));
  const limits = kubernetesMemoryLimits();
  log(`starting the system (${profile.name} profile: ${profile.partitions} partitions)`);
  const system = await RocketsSystem.start({ env: { LOG_LEVEL: "warn", ...profile.env, ...options.env } });
  const pids = () => ({ ingest: system.ingest.pid, sequencer: system.sequencers[0]!.pid, api: system.apis[0]!.pid, nats: system.nats.pid });
  const fleet = new LegitFleet(channelsPerPartition(0x1e917, profile.partitions, profile.legitPerPartition), {
    ingestUrl: system.ingest.url,
    apiUrl: system.apiUrl,
    periodMs: profile.periodMs,
    visibleTimeoutMs: profile.visibleTimeoutMs,
    pollMs: profile.pollMs,
  });
  const results: AttackResult[] = [];
  try {
    for (const [i, attack] of attacks.entries()) {
      const ctx: AttackContext = { ingestUrl: system.ingest.url, apiUrl: system.apiUrl, partitions: profile.partitions, profile, from: attackerAddress(i) };
      const drained = i === 0 ? undefined : await drainBacklog(system.sequencers[0]!.url, profile.drainTimeoutMs);
      log(`(${attack.key}) ${attack.title}${drained ? ` (${drained})` : ""}`);
      results.push({ ...(await runAttack(attack, ctx, fleet, pids, limits)), drained });
      const r = results[results.length - 1]!;
      log(`(${attack.key}) ${r.pass ? "PASS" : "FAIL"} in ${r.seconds.toFixed(1)} s`);
    }
  } finally {
    closeAgents();
    await system.dispose();
  }
  return results;
}

/**
 * Waits until the sequencer has been delivered everything the stream holds
 * (its consumers' lag is 0), so that an attack is measured on its own rather
 * than on what the attacks before it left to do; bounded, and said either way.
 */
async function drainBacklog(sequencerUrl: string, timeoutMs: number): Promise<string> {
  const started = Date.now();
  let lag = NaN;
  while (Date.now() - started < timeoutMs) {
    lag = await metricValue(sequencerUrl, "rockets_sequencer_consumer_pending_messages").catch(() => NaN);
    if (lag === 0) return `backlog drained in ${Date.now() - started} ms`;
    await new Promise((r) => setTimeout(r, 250));
  }
  return `backlog not drained: ${lag} messages still undelivered after ${timeoutMs} ms`;
}

async function runAttack(
  attack: Attack,
  ctx: AttackContext,
  fleet: LegitFleet,
  pids: () => Partial<Record<ProcessName, number>>,
  limits: Record<ProcessName, number>,
): Promise<AttackResult> {
  const started = Date.now();
  const sampler = new MemorySampler(pids);
  let setup: string | undefined;
  let checks: Check[] = [];
  let legitRun: LegitRun = { latencies: [], refusedPosts: 0, samples: [] };
  let exactProblems: string[] = [];
  try {
    setup = attack.setup ? await attack.setup(ctx) : undefined;
    fleet.start();
    try {
      checks = await attack.run(ctx);
    } finally {
      legitRun = await fleet.stop();
    }
    exactProblems = await fleet.verify(ctx.profile.verifyTimeoutMs);
    if (attack.settled) checks.push(...(await attack.settled(ctx)));
  } catch (err) {
    checks.push({ name: "ran", ok: false, detail: err instanceof Error ? err.message : String(err) });
  }
  const peaks = sampler.stop();
  const finite = legitRun.latencies.filter(Number.isFinite);
  const partial = {
    key: attack.key,
    title: attack.title,
    setup,
    legit: {
      updates: legitRun.latencies.length,
      p50: quantile(legitRun.latencies, 0.5),
      p99: quantile(legitRun.latencies, 0.99),
      timeouts: legitRun.latencies.length - finite.length,
      refusedPosts: legitRun.refusedPosts,
      slowest: slowest(legitRun),
    },
    exactProblems,
    peaks,
    limits,
    seconds: (Date.now() - started) / 1000,
  };
  const all = [...commonChecks(partial), ...checks];
  return { ...partial, checks: all, pass: all.every((c) => c.ok) };
}
