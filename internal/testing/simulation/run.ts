// One simulated run: a seed's deployment, load and faults, played on the
// scheduler, then checked. The phases:
// 1. chaos: the load is sent while instances crash, stop, pause (some as a
//    VM suspend), lose the network, entries turn unreadable and the stream
//    trims by age or bytes, as the seed's options say;
// 2. heal: faults end, at least one instance runs, time passes (under
//    GAP_POLICY=skip past the gap deadline, and the deadline is checked);
//    every acked message must be located;
// 3. completion: every number not stored yet is sent; the run goes on until
//    every rocket is at its last number and every consumer drained, or the
//    bound passes; then the whole history is checked.

import { pino, type Logger } from "pino";
import { GapPolicy } from "../../sequencer/channel-actor.js";
import { rescanIntervalMs } from "../../sequencer/sequencer.js";
import { partitionOfLeaseKey, leaseOwner } from "../../sequencer/partition-leases.js";
import { repairChannel } from "../../sequencer/channel-repair.js";
import { checkComplete, checkHistory, checkHistoryView, checkLocated, dedupe, lostToRetention, type Violation } from "./checker.js";
import { SimInstance } from "./instance.js";
import { Load, short } from "./load.js";
import type { SimOptions } from "./options.js";
import { SimRandom } from "./random.js";
import { Scheduler, WORLD } from "./scheduler.js";
import { World, type StateRecord } from "./world.js";

export interface SimStats {
  virtualMs: number;
  steps: number;
  messagesStored: number;
  sends: number;
  faults: Record<string, number>;
  takeovers: number;
  /** The most numbers any rocket waited on behind a gap at the heal snapshot. */
  maxGap: number;
  incarnations: number;
}

export interface SimResult {
  seed: number;
  profile: string;
  ok: boolean;
  violations: Violation[];
  stats: SimStats;
  /** The run's events, when traced. */
  trace?: string[];
}

export interface RunOptions {
  /** Keep a trace of the run (instances' logs at info, the load, faults, state writes). */
  trace?: boolean;
}

const TRACE_LIMIT = 50_000;

export async function simulate(options: SimOptions, run: RunOptions = {}): Promise<SimResult> {
  const scheduler = new Scheduler();
  const trace: string[] | undefined = run.trace ? [] : undefined;
  const say = (owner: string, line: string) => {
    if (!trace) return;
    if (trace.length >= TRACE_LIMIT) trace.shift();
    trace.push(`${(scheduler.now / 1000).toFixed(3).padStart(8)}s ${owner.padEnd(6)} ${line}`);
  };
  const violations: Violation[] = [];
  const crashed = (reason: unknown) => violations.push({ invariant: "crash", detail: `unhandled: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}` });
  process.on("unhandledRejection", crashed);
  scheduler.install();
  try {
    return await play(options, scheduler, say, violations, trace);
  } catch (err) {
    crashed(err);
    return { seed: options.seed, profile: options.profile, ok: false, violations, stats: emptyStats(scheduler), ...(trace ? { trace } : {}) };
  } finally {
    scheduler.uninstall();
    process.off("unhandledRejection", crashed);
  }
}

function emptyStats(scheduler: Scheduler): SimStats {
  return { virtualMs: scheduler.now, steps: scheduler.steps, messagesStored: 0, sends: 0, faults: {}, takeovers: 0, maxGap: 0, incarnations: 0 };
}

async function play(
  options: SimOptions,
  scheduler: Scheduler,
  say: (owner: string, line: string) => void,
  violations: Violation[],
  trace: string[] | undefined,
): Promise<SimResult> {
  const random = new SimRandom(options.seed);
  const world = new World(scheduler, random.fork(), options.partitions, options.network, options.consumer, options.sabotage);
  if (trace) {
    world.onRecord = (channel, r) => say(r.by, `state ${short(channel)} r${r.revision}: ${describeState(r.state)}`);
    world.onConsumer = (owner, what, seq) => {
      const event = world.stream.get(seq);
      const channel = event?.subject.split(".").pop() ?? "?";
      say(owner, `${what} seq ${seq} (${short(channel)})`);
    };
  }
  const faultRandom = random.fork();
  const load = new Load(world, random.fork(), options.load, trace ? (line) => say(WORLD, line) : undefined);
  const stats: SimStats = emptyStats(scheduler);
  const fault = (kind: string) => (stats.faults[kind] = (stats.faults[kind] ?? 0) + 1);

  // Ownership changes, as a watcher of the lease bucket sees them.
  const owners = new Map<number, string | null>();
  world.leases.subscribe((entry) => {
    const p = partitionOfLeaseKey(entry.key);
    if (p === undefined) return;
    const owner = entry.value === null ? null : (leaseOwner(entry.value) ?? "?");
    const before = owners.get(p);
    if (owner !== null && before !== undefined && before !== null && before !== owner) stats.takeovers += 1;
    if (owner === null && before !== undefined) return;
    if (owner !== before) say(WORLD, `lease ${p}: ${owner ?? "free"} (revision ${entry.revision})`);
    owners.set(p, owner);
  });

  const instances: SimInstance[] = [];
  let nextId = 1;
  const logFor = (owner: string): Logger =>
    trace
      ? pino(
          // Errors without their stack: a trace says what happened, the same on every replay.
          { level: "info", base: null, timestamp: false, serializers: { err: (e: Error) => ({ type: e.name, message: e.message }) } },
          { write: (line: string) => say(owner, line.trim()) },
        )
      : pino({ level: "silent" });
  const startInstance = (instanceId?: string) => {
    const id = instanceId ?? `s${nextId++}`;
    const owner = `${id}#${instances.filter((i) => i.owner.startsWith(`${id}#`)).length + 1}`;
    const instance = new SimInstance(world, owner, { ...options.sequencer, instanceId: id, partitions: options.partitions }, logFor(owner));
    if (options.faults.maxSkewMs > 0) scheduler.setSkew(owner, (faultRandom.next() * 2 - 1) * options.faults.maxSkewMs);
    instances.push(instance);
    stats.incarnations += 1;
    say(WORLD, `start ${owner}`);
    instance.start();
    return instance;
  };
  const live = () => instances.filter((i) => i.alive);
  const ttl = options.sequencer.leaseTtlMs;

  for (let i = 0; i < options.instances; i += 1) startInstance();
  load.schedule();

  // Faults, at drawn moments of the chaos phase.
  const { faults } = options;
  const chaosMs = options.load.chaosMs;
  const at = () => faultRandom.next() * chaosMs;
  for (let i = 0; i < faults.crashes + faults.stops; i += 1) {
    const graceful = i >= faults.crashes;
    scheduler.schedule(WORLD, at(), () => {
      const victim = pickLive(faultRandom, live());
      if (!victim) return;
      fault(graceful ? "stop" : "crash");
      say(WORLD, `${graceful ? "SIGTERM" : "SIGKILL"} ${victim.owner}`);
      if (graceful) victim.stop();
      else victim.kill();
      const sameId = faultRandom.chance(0.5) ? victim.owner.split("#")[0] : undefined;
      scheduler.schedule(WORLD, 500 + faultRandom.next() * 2500, () => startInstance(sameId));
    });
  }
  for (let i = 0; i < faults.pauses; i += 1) {
    scheduler.schedule(WORLD, at(), () => {
      const victim = pickLive(faultRandom, live());
      if (!victim) return;
      const suspend = faultRandom.chance(faults.suspendRate);
      const ms = ttl * (0.5 + faultRandom.next() * 2.5);
      fault(suspend ? "suspend" : "pause");
      say(WORLD, `${suspend ? "suspend" : "SIGSTOP"} ${victim.owner} for ${ms.toFixed(0)} ms`);
      scheduler.pause(victim.owner, ms, suspend);
    });
  }
  for (let i = 0; i < faults.cuts; i += 1) {
    scheduler.schedule(WORLD, at(), () => {
      const victim = pickLive(faultRandom, live());
      if (!victim) return;
      const ms = ttl * (0.3 + faultRandom.next() * 2);
      fault("cut");
      say(WORLD, `network cut ${victim.owner} for ${ms.toFixed(0)} ms`);
      victim.link.cut(ms);
    });
  }
  for (let i = 0; i < faults.unreadable; i += 1) {
    scheduler.schedule(WORLD, at(), () => {
      const written = load.rockets.filter((r) => world.states.revisionOf(r.channel) > 0);
      if (written.length === 0) return;
      const rocket = faultRandom.pick(written);
      fault("unreadable");
      say(WORLD, `entry of ${short(rocket.channel)} overwritten with bytes that do not decode`);
      world.plantUnreadable(rocket.channel);
    });
  }
  const retention = faults.retention;
  if (retention.kind !== "none") {
    const trim = () => {
      const { stream } = world;
      let first = stream.firstHeld;
      if (retention.kind === "age") {
        const oldest = Date.now() - retention.maxAgeMs;
        for (const e of stream.from(first)) {
          if (e.at >= oldest) break;
          first = e.seq + 1;
        }
      } else {
        let bytes = stream.bytes;
        for (const e of stream.from(first)) {
          if (bytes <= retention.maxBytes) break;
          bytes -= e.data.byteLength + e.subject.length;
          first = e.seq + 1;
        }
      }
      if (first > stream.firstHeld) {
        fault("trim");
        say(WORLD, `retention removed seq ${stream.firstHeld}..${first - 1}`);
        stream.trimBefore(first);
      }
      if (scheduler.now < chaosMs) scheduler.schedule(WORLD, 1000, trim);
    };
    scheduler.schedule(WORLD, 1000, trim);
  }

  await scheduler.runUntil(chaosMs);

  // Heal: faults end (pauses and cuts run out); someone runs; an operator repairs what was quarantined.
  say(WORLD, "--- heal");
  if (live().length === 0) startInstance();
  if (faults.unreadable > 0) {
    const operator = world.operatorPorts("operator");
    const repairAll = async () => {
      for (const rocket of load.rockets) {
        let broken = false;
        try {
          broken = world.states.peek(rocket.channel)?.quarantine !== undefined;
        } catch {
          broken = true;
        }
        if (!broken) continue;
        try {
          const outcome = await repairChannel(rocket.channel, rocket.partition, operator.store, operator.parked, { force: true });
          say("operator", `npm run repair -- ${short(rocket.channel)}: ${outcome.kind}`);
        } catch (err) {
          say("operator", `npm run repair -- ${short(rocket.channel)} failed: ${(err as Error).message}`);
        }
      }
    };
    // The operator runs the repair twice: once the alert fires, and again a little later (a repair that raced a write starts over).
    scheduler.schedule(WORLD, 2 * ttl, () => void repairAll());
    scheduler.schedule(WORLD, 4 * ttl + options.consumer.ackWaitMs, () => void repairAll());
  }
  const policy = options.sequencer.gapPolicy;
  const sweepMs = Math.max(250, Math.min(options.sequencer.actorIdleMs / 2, options.sequencer.gapDeadlineMs / 4, 10_000));
  const settleMs = 3 * ttl + options.consumer.ackWaitMs + 2 * options.sequencer.fetchExpiresMs + 5000;
  const rescanMs = rescanIntervalMs(options.sequencer.gapDeadlineMs);
  const healMs = settleMs + (policy === GapPolicy.Skip ? options.sequencer.gapDeadlineMs + 2 * sweepMs + rescanMs + options.sequencer.retryDelayMs : 0);
  await scheduler.runUntil(chaosMs + healMs);
  stats.maxGap = maxGap(world, load);
  violations.push(...checkLocated(world, load));
  // A gap a stale owner wrote after the current owner's scan is found by the next scan.
  if (policy === GapPolicy.Skip) violations.push(...checkDeadline(world, load, options.sequencer.gapDeadlineMs, 2 * sweepMs + rescanMs + options.sequencer.retryDelayMs));

  // Completion: every number not stored yet is sent; every rocket must get to its end.
  say(WORLD, "--- completion");
  load.complete();
  // The load's last resends may come after this: the bound counts from the later of the two.
  const bound = Math.max(scheduler.now, load.lastSendAt) + settleMs + 30_000;
  const done = () => scheduler.now > load.lastSendAt && isComplete(world, load);
  while (scheduler.now < bound && !done()) await scheduler.runUntil(Math.min(bound, scheduler.now + 1000), done);
  // A little longer, so what completion set off (an eviction, a late write) is in the history too.
  await scheduler.runUntil(scheduler.now + 2000);

  violations.push(...checkHistory(world, load, policy === GapPolicy.Skip));
  violations.push(...checkLocated(world, load));
  violations.push(...checkComplete(world, load));
  violations.push(...checkHistoryView(world, load));
  stats.virtualMs = scheduler.now;
  stats.steps = scheduler.steps;
  stats.messagesStored = load.stored;
  stats.sends = load.sends;
  for (const c of world.consumers.values()) c.dispose();
  world.leases.dispose();
  const unique = dedupe(violations);
  return { seed: options.seed, profile: options.profile, ok: unique.length === 0, violations: unique, stats, ...(trace ? { trace } : {}) };
}

function describeState(state: StateRecord["state"]): string {
  if (state === null) return "deleted";
  if (state === "unreadable") return "unreadable bytes";
  if (state === "quarantined") return "quarantined";
  const parts = [`lastApplied ${state.lastApplied}`];
  if (state.rocket) parts.push(`speed ${state.rocket.speed}`);
  if (state.gap) parts.push(`gap fromSeq ${String(state.gap.fromSeq)} parked ${state.gap.parked} since ${state.gap.since}`);
  if (state.skipped) parts.push(`skipped ${state.skipped.map((r) => `${r.from}-${r.to}`).join(",")}`);
  return parts.join(", ");
}

function pickLive(random: SimRandom, live: SimInstance[]): SimInstance | undefined {
  return live.length === 0 ? undefined : random.pick(live);
}

function isComplete(world: World, load: Load): boolean {
  for (const consumer of world.consumers.values()) {
    const { pending, ackPending } = consumer.position();
    if (pending > 0 || ackPending > 0) return false;
  }
  for (const rocket of load.rockets) {
    let lastApplied = 0;
    try {
      lastApplied = world.states.peek(rocket.channel)?.state.lastApplied ?? 0;
    } catch {
      return false;
    }
    if (lastApplied < rocket.messages.length) return false;
  }
  return true;
}

function maxGap(world: World, load: Load): number {
  let most = 0;
  for (const rocket of load.rockets) {
    let lastApplied = 0;
    try {
      lastApplied = world.states.peek(rocket.channel)?.state.lastApplied ?? 0;
    } catch {
      continue;
    }
    const stored = [...(load.copies.get(rocket.channel)?.keys() ?? [])].filter((n) => n > lastApplied).length;
    most = Math.max(most, stored);
  }
  return most;
}

/**
 * Under GAP_POLICY=skip, once the deadline passed with no fault running, a
 * launched rocket held up by a number that never came has given it up and
 * applied everything after it.
 */
function checkDeadline(world: World, load: Load, deadlineMs: number, graceMs: number): Violation[] {
  const violations: Violation[] = [];
  for (const rocket of load.rockets) {
    if (rocket.heldBack.has(1) || rocket.heldBack.size === 0) continue;
    let state;
    try {
      state = world.states.peek(rocket.channel)?.state;
    } catch {
      continue;
    }
    if (!state || state.rocket === null) continue;
    // Rebuilt by a repair and not written by a sequencer since: its gap is reviewed once its channel is next written (documented).
    const last = world.history.get(rocket.channel)?.at(-1);
    if (last?.by === "operator") continue;
    // A gap opened late (after an earlier one was skipped) has a deadline of its own, not passed yet.
    if (state.gap && Date.parse(state.gap.since) + deadlineMs + graceMs > Date.now()) continue;
    const stored = load.copies.get(rocket.channel);
    let highest = 0;
    for (const n of stored?.keys() ?? []) highest = Math.max(highest, n);
    // Retention removed the next number: nothing can bring it back, and the rocket shows it waits.
    if (state.lastApplied < highest && !lostToRetention(world, load, rocket.channel, state.lastApplied)) {
      violations.push({
        invariant: "deadline",
        detail: `${short(rocket.channel)}: under GAP_POLICY=skip still at lastApplied ${state.lastApplied} past the deadline (numbers stored up to ${highest}, held back ${[...rocket.heldBack].join(", ")}); gap ${JSON.stringify(state.gap ?? null)}`,
      });
    }
  }
  return violations;
}
