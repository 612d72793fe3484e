// The chaos scenario of issue 10 as a library (`npm run chaos` wraps it for
// the command line, test/chaos.test.ts runs it small):
//
// 1. a 3-node JetStream cluster, R3, 2 ingest, 3 sequencers, 2 APIs;
// 2. both ingests loaded with duplicated, reordered messages by the project's
//    load program, round after round, while faults are injected on a fixed
//    schedule: a sequencer SIGKILLed every few seconds and restarted, an ingest
//    SIGKILLed and restarted, the node leading the events stream SIGKILLed and
//    restarted on its store (twice), a sequencer SIGSTOPped past its lease and
//    continued;
// 3. once the last fault is over and the last round is sent, wait until the
//    system has settled (every partition owned once, every consumer drained,
//    every rocket exact in both APIs), and measure how long after the last
//    fault that was;
// 4. then check the stream holds each message once and no replica drifted.
//
// Time-bounded: a hard deadline (or the caller's signal) aborts whatever is
// under way. Whatever happens, everything it started is stopped before it
// returns; the result says what passed, what did not, and where the logs are.

import { setMaxListeners } from "node:events";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { REPO_ROOT } from "../../internal/testing/service-process.js";
import { ChaosCluster, LEASE_TTL_MS, type UnplannedExit } from "./chaos-cluster.js";
import {
  checkApi,
  checkConsumers,
  checkOwnership,
  checkReplicas,
  checkStream,
  describeShares,
  isBalanced,
  readOwnership,
  type CheckOutcome,
} from "./checks.js";
import { planFaults } from "./fault-plan.js";
import { FaultInjector, type FaultRecord } from "./faults.js";
import { expectedMessageIds, LoadRounds, type LoadTotals } from "./load-rounds.js";
import type { ChaosOptions } from "./options.js";
import { sleepUnlessAborted } from "../launch/abortable-sleep.js";

export interface ChaosHooks {
  /** Progress lines (already prefixed with the time since the start). */
  say?: (line: string) => void;
  /** Aborts the run (Ctrl-C); it still stops everything before returning. */
  signal?: AbortSignal;
  /** Called once the cluster runs, e.g. to kill its processes if this one dies abruptly. */
  onCluster?: (cluster: ChaosCluster) => void;
}

export interface ChaosResult {
  ok: boolean;
  /** Why it failed, most important first; empty when ok. */
  failures: string[];
  checks: CheckOutcome[];
  faults: FaultRecord[];
  unplannedExits: UnplannedExit[];
  load: LoadTotals;
  rockets: number;
  partitions: number;
  /**
   * From the later of the last fault striking (the kill, not the restart)
   * and the last message's 2xx, to the first moment every settle check
   * passed; undefined when it never did. The goal applies to this figure.
   */
  settleMs: number | undefined;
  /** From the last fault striking alone (the load's tail included). */
  settleAfterFaultMs: number | undefined;
  settleGoalMs: number;
  /** The sequencers' shares once every process was back: balanced (within one) or not, and when that was seen. */
  balance: { balanced: boolean; counts: number[]; shares: string; afterMs: number } | undefined;
  durationMs: number;
  logsDir: string;
  /** The last lines of every process's log, when it failed. */
  logTails: string | undefined;
}

const OWNERSHIP_AT_START_TIMEOUT_MS = 30_000;
const SETTLE_POLL_MS = 100;
const REPLICA_AGREEMENT_TIMEOUT_MS = 10_000;
/** After the last restart, partitions may move to the instance that came back: that must be over within this. */
const STAY_SETTLED_TIMEOUT_MS = 15_000;
/** How long the shares may take to even out once every process is back. */
const BALANCE_TIMEOUT_MS = 15_000;
const LOG_TAIL_LINES = 30;
/** A fault still finishing after an abort is waited for at most this long before the last cleanup. */
const STRAGGLER_WAIT_MS = 35_000;

const sleep = sleepUnlessAborted;

class Aborted extends Error {
  override name = "Aborted";
}

/** Settles like `promise`, or rejects with Aborted as soon as `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Aborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function runStamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function runChaos(options: ChaosOptions, hooks: ChaosHooks = {}): Promise<ChaosResult> {
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const say = (line: string) => hooks.say?.(`+${(elapsed() / 1000).toFixed(1).padStart(5)}s ${line}`);
  const abort = new AbortController();
  // Every fault's timer and every load round listen to it.
  setMaxListeners(1000, abort.signal);
  const onOuterAbort = () => abort.abort(new Aborted("interrupted"));
  hooks.signal?.addEventListener("abort", onOuterAbort, { once: true });
  if (hooks.signal?.aborted) onOuterAbort();
  let deadlineHit = false;
  const deadline = setTimeout(() => {
    deadlineHit = true;
    abort.abort(new Aborted("deadline"));
  }, options.deadlineMs);

  const logsDir = options.logsDir ?? join(REPO_ROOT, ".tmp", "chaos", runStamp());
  mkdirSync(logsDir, { recursive: true });
  const failures: string[] = [];
  const checks: CheckOutcome[] = [];
  const faults: FaultRecord[] = [];
  const faultTasks: Promise<unknown>[] = [];
  let phase = "starting the cluster";
  let cluster: ChaosCluster | undefined;
  let nc: NatsConnection | undefined;
  let load: LoadRounds | undefined;
  let settleMs: number | undefined;
  let settleAfterFaultMs: number | undefined;
  let balance: ChaosResult["balance"];

  try {
    say(`starting a 3-node NATS cluster, 2 ingest, 3 sequencers, 2 APIs (R3, ${options.partitions} partitions); logs in ${logsDir}`);
    cluster = await ChaosCluster.start({ partitions: options.partitions, logDir: logsDir, say });
    hooks.onCluster?.(cluster);
    const system = cluster;
    if (abort.signal.aborted) system.halt();
    else abort.signal.addEventListener("abort", () => system.halt(), { once: true });
    nc = await connect({ servers: system.nats.urls, maxReconnectAttempts: -1, name: "chaos-checker" });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    say("everything is ready");

    phase = "waiting for the partitions to be owned before the load";
    const ownedAt = await unlessAborted(
      (async () => {
        const until = Date.now() + OWNERSHIP_AT_START_TIMEOUT_MS;
        let outcome = await checkOwnership(system.sequencers, options.partitions);
        while (!outcome.ok && Date.now() < until && !abort.signal.aborted) {
          await sleep(SETTLE_POLL_MS);
          outcome = await checkOwnership(system.sequencers, options.partitions);
        }
        return outcome;
      })(),
      abort.signal,
    );
    if (!ownedAt.ok) throw new Error(`before any fault: ${ownedAt.detail}`);
    say(ownedAt.detail);

    phase = "loading and injecting faults";
    const plan = planFaults({ ...options, leaseTtlMs: LEASE_TTL_MS });
    load = new LoadRounds(
      () => system.ingests.map((m) => `${m.process.url}/messages`),
      { ...options },
      abort.signal,
    );
    const rounds = load;
    const loadStart = performance.now();
    rounds.start();
    say(`load started on both ingests; ${plan.length} faults over ${seconds(options.faultWindowMs)}`);
    const injector = new FaultInjector(system, () => performance.now() - loadStart, say, abort.signal);
    // The load stops (its rounds under way complete) once the last fault has struck, so the
    // settle time measures recovery, not a load that goes on after the faults.
    let lastHit!: () => void;
    const lastFaultHit = new Promise<void>((resolve) => (lastHit = resolve));
    plan.forEach((fault, i) => {
      faultTasks.push(
        (async () => {
          await sleep(loadStart + fault.at - performance.now(), abort.signal);
          if (abort.signal.aborted) return;
          faults.push(await injector.inject(fault, i === plan.length - 1 ? lastHit : undefined));
        })(),
      );
    });
    const allFaultsOver = Promise.all(faultTasks);
    allFaultsOver.catch(() => undefined);
    await unlessAborted(Promise.race([lastFaultHit, allFaultsOver]), abort.signal);
    say("last fault struck; letting the load rounds under way finish");

    phase = "finishing the load";
    await unlessAborted(rounds.finish(), abort.signal);
    say(`load finished: ${rounds.totals.messages} distinct messages, ${rounds.totals.posts} posts, ${rounds.expected.size} rockets`);

    phase = "waiting for the system to settle";
    const expected = rounds.expected;
    const settleChecks = async (): Promise<CheckOutcome[]> => {
      const outcomes = [await checkOwnership(system.sequencers, options.partitions)];
      if (outcomes[0]!.ok) outcomes.push(await checkConsumers(jsm, options.partitions));
      for (const api of system.apis) if (outcomes.every((o) => o.ok)) outcomes.push(await checkApi(api, expected));
      return outcomes;
    };
    const allPass = (outcomes: CheckOutcome[]) => outcomes.length === 2 + system.apis.length && outcomes.every((o) => o.ok);
    /** Polls the settle checks until all pass at once; the outcomes, and when they passed. */
    const settle = async (timeoutMs: number): Promise<{ outcomes: CheckOutcome[]; at: number | undefined }> => {
      const until = performance.now() + timeoutMs;
      let outcomes = await unlessAborted(settleChecks(), abort.signal);
      while (!allPass(outcomes) && performance.now() < until) {
        await sleep(SETTLE_POLL_MS, abort.signal);
        outcomes = await unlessAborted(settleChecks(), abort.signal);
      }
      return { outcomes, at: allPass(outcomes) ? performance.now() : undefined };
    };
    const first = await settle(options.settleTimeoutMs);
    if (first.at === undefined) {
      checks.push(...first.outcomes.filter((o) => !o.ok));
      throw new Error(`not settled ${seconds(options.settleTimeoutMs)} after the load: ${first.outcomes.filter((o) => !o.ok).map((o) => `${o.name}: ${o.detail}`).join("; ")}`);
    }
    checks.push(...first.outcomes);

    phase = "waiting for the last fault's target to be back";
    await unlessAborted(allFaultsOver, abort.signal);
    const lastFaultAt = loadStart + Math.max(...faults.filter((f) => !f.skipped).map((f) => f.startedAt));
    const from = Math.max(lastFaultAt, rounds.totals.lastPostAt);
    settleMs = first.at - from;
    settleAfterFaultMs = first.at - lastFaultAt;
    say(
      `settled ${seconds(settleMs)} after the last fault and the last message ` +
        `(last fault at +${seconds(lastFaultAt - loadStart)}, last message at +${seconds(rounds.totals.lastPostAt - loadStart)} into the load)`,
    );
    if (settleMs > options.settleGoalMs) failures.push(`settled ${seconds(settleMs)} after the last fault and message, goal ${seconds(options.settleGoalMs)}`);

    phase = "checking the stream and the replicas";
    checks.push(await unlessAborted(checkStream(js, jsm, expectedMessageIds(expected)), abort.signal));
    checks.push(await unlessAborted(checkReplicas(system.nats.servers, REPLICA_AGREEMENT_TIMEOUT_MS), abort.signal));

    // With every process back (the last one restarted may take partitions over), it must settle again and stay so.
    phase = "checking it stays settled with every process back";
    const again = await settle(STAY_SETTLED_TIMEOUT_MS);
    checks.push(...again.outcomes.map((o) => ({ ...o, name: `${o.name} (all back)` })));

    phase = "watching the partitions rebalance";
    const balanceFrom = performance.now();
    let owned = await unlessAborted(readOwnership(system.sequencers), abort.signal);
    while (!isBalanced(owned) && performance.now() - balanceFrom < BALANCE_TIMEOUT_MS) {
      await sleep(SETTLE_POLL_MS, abort.signal);
      owned = await unlessAborted(readOwnership(system.sequencers), abort.signal);
    }
    balance = {
      balanced: isBalanced(owned),
      counts: owned.map((o) => o.partitions.length),
      shares: describeShares(owned),
      afterMs: performance.now() - balanceFrom,
    };
    say(`partition shares ${balance.balanced ? "balanced" : "NOT balanced"} after ${seconds(balance.afterMs)}: ${balance.shares}`);
    if (options.requireBalance && !balance.balanced) failures.push(`partition shares not within one after ${seconds(balance.afterMs)}: ${balance.shares}`);
    for (const c of checks) if (!c.ok) failures.push(`${c.name}: ${c.detail}`);
    if (!system.nats.servers.every((s) => s.running)) failures.push("a NATS node is not running at the end");
  } catch (err) {
    if (err instanceof Aborted || abort.signal.aborted) {
      failures.unshift(deadlineHit ? `deadline of ${seconds(options.deadlineMs)} reached while ${phase}` : `interrupted while ${phase}`);
    } else {
      failures.unshift(`${phase}: ${err instanceof Error ? err.message : String(err)}`);
    }
  } finally {
    clearTimeout(deadline);
    hooks.signal?.removeEventListener("abort", onOuterAbort);
  }

  const logTails = failures.length > 0 ? cluster?.tails(LOG_TAIL_LINES) : undefined;
  say("stopping everything");
  abort.abort(new Aborted("finished"));
  await nc?.close().catch(() => undefined);
  if (cluster) {
    await cluster.dispose();
    // A fault that was restarting something when the run was cut short may still start it: wait, then clean up again.
    await Promise.race([Promise.allSettled(faultTasks), sleep(STRAGGLER_WAIT_MS)]);
    await cluster.dispose();
  }
  await load?.finish().catch(() => undefined);

  return {
    ok: failures.length === 0,
    failures,
    checks,
    faults,
    unplannedExits: cluster?.unplannedExits ?? [],
    load: load?.totals ?? { rounds: 0, posts: 0, messages: 0, duplicates: 0, failures: new Map(), lastPostAt: 0 },
    rockets: load?.expected.size ?? 0,
    partitions: options.partitions,
    settleMs,
    settleAfterFaultMs,
    settleGoalMs: options.settleGoalMs,
    balance,
    durationMs: elapsed(),
    logsDir,
    logTails,
  };
}
