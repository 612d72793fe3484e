// bench:e2e: the operators' test program's default profile (100k messages,
// 20 rockets, concurrency 3, a new connection per message) against a server
// that accepts and discards, an in-memory reference that sequences with the
// domain's own code and keeps nothing durable (bench/reference-server.ts),
// then the whole system (its own nats-server and the three services as
// processes), in the same run. Prints the rates, the system's ratio to the
// reference, CPU per message per process, and the settle time: from the last
// POST's answer until the API shows every rocket in its final state.
// Goals (issue 11): system >= 0.9 of the reference; settled within 1 s; whole-system
// CPU per message <= 250 us (a new connection per message) or <= 120 us (--keep-alive).
//
// npm run bench:e2e [-- --max-messages=N --rockets=N --concurrency-level=N --seed=N --keep-alive]
// Environment: BENCH_SYNC_INTERVAL (nats-server's sync_interval, default 100ms as in `npm start`);
// BENCH_CPU_PROF=<dir> writes V8 CPU profiles of each service's threads to <dir>/<service>/ (open in Chrome DevTools).

import { execFileSync } from "node:child_process";
import { NatsServer } from "../internal/testing/nats-server.js";
import { ServiceProcess } from "../internal/testing/service-process.js";
import { parseFlags } from "../scripts/launch/flags.js";
import { runLaunch, type LaunchResult } from "../scripts/launch/launch.js";
import { summaryLine } from "../scripts/launch/progress.js";
import { benchServer } from "./bench-server.js";
import { cpuSeconds } from "./process-cpu.js";
import { TEST_KEYS } from "../internal/testing/api-keys.js";

const RATIO_GOAL = 0.9;
const SETTLE_GOAL_MS = 1000;
/** Issue 11: whole-system CPU per message (nats-server + ingest + sequencer + api), by profile. */
const CPU_GOAL_US = { newConnection: 250, keepAlive: 120 };

function options() {
  // Reuse the load program's flag parser; the URL is filled in per target.
  const parsed = parseFlags(["http://placeholder/messages", ...process.argv.slice(2)]);
  if (!parsed.ok) {
    for (const p of parsed.problems) console.error(`error: ${p}`);
    process.exit(2);
  }
  return parsed.options;
}

const rate = (r: LaunchResult) => (r.posts * 1000) / r.sendMs;

/** The pid listening on a loopback port (Linux: `ss`), to read its CPU time; undefined elsewhere. */
function pidListeningOn(port: number): number | undefined {
  try {
    const out = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) of a process in milliseconds. */
function cpuMs(pid: number): number {
  return cpuSeconds(pid) * 1000;
}

/** Where the CPU goes per message: each process of the system, and this client. */
class CpuMeter {
  private readonly before = new Map<string, number>();
  private clientBefore = process.cpuUsage();

  constructor(private readonly pids: Map<string, number>) {}

  start(): void {
    for (const [name, pid] of this.pids) this.before.set(name, cpuMs(pid));
    this.clientBefore = process.cpuUsage();
  }

  /** The system's processes' CPU per message (us), summed. */
  systemUs(messages: number): number {
    let ms = 0;
    for (const [name, pid] of this.pids) ms += cpuMs(pid) - this.before.get(name)!;
    return (ms * 1000) / messages;
  }

  line(messages: number): string {
    const perMessage = (ms: number) => `${((ms * 1000) / messages).toFixed(0)} us`;
    const parts = [...this.pids].map(([name, pid]) => `${name} ${perMessage(cpuMs(pid) - this.before.get(name)!)}`);
    const client = process.cpuUsage(this.clientBefore);
    parts.push(`load program (incl. planning and verify) ${perMessage((client.user + client.system) / 1000)}`);
    return `CPU per message: ${parts.join(", ")}`;
  }
}

async function main(): Promise<void> {
  const base = options();
  console.log(
    `profile: ${base.maxMessages} messages, ${base.rockets} rockets, concurrency ${base.concurrency}, ` +
      `${base.keepAlive ? "keep-alive" : "a new connection per message"}, seed ${base.seed}`,
  );

  const discard = await benchServer("discard-server.ts");
  let baseline: LaunchResult;
  try {
    baseline = await runLaunch({ ...base, url: discard.url, verifyUrl: undefined }, { progress: true });
  } finally {
    discard.stop();
  }
  console.log(`discard server: ${summaryLine(baseline)}`);

  // The domain's own sequencing in one process's memory: what the system is measured against.
  const reference = await benchServer("reference-server.ts");
  let inMemory: LaunchResult;
  let referenceCpuUs = Number.NaN;
  try {
    const cpuBefore = cpuSeconds(reference.pid);
    inMemory = await runLaunch({ ...base, url: reference.url, verifyUrl: reference.base }, { progress: true });
    referenceCpuUs = ((cpuSeconds(reference.pid) - cpuBefore) / inMemory.posts) * 1e6;
  } finally {
    reference.stop();
  }
  console.log(`in-memory reference: ${summaryLine(inMemory)}; server CPU ${referenceCpuUs.toFixed(0)} us per message`);

  // Durability as `npm start` runs it (a 100 ms group commit); BENCH_SYNC_INTERVAL=always for the deployments' setting.
  const nats = await NatsServer.start({ syncInterval: process.env["BENCH_SYNC_INTERVAL"] ?? "100ms" });
  const services: ServiceProcess[] = [];
  try {
    const env = { LOG_LEVEL: "warn" };
    const profileDir = process.env["BENCH_CPU_PROF"];
    const nodeArgs = (name: string) => (profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}/${name}`] : []);
    services.push(
      ...(await Promise.all(
        (["ingest", "sequencer", "api"] as const).map((name) =>
          ServiceProcess.start(name, { natsUrl: nats.url, env, nodeArgs: nodeArgs(name) }),
        ),
      )),
    );
    const [ingest, sequencer, api] = services;
    const pids = new Map<string, number | undefined>([
      ["nats-server", pidListeningOn(nats.port)],
      ["ingest", pidListeningOn(ingest!.port)],
      ["sequencer", pidListeningOn(sequencer!.port)],
      ["api", pidListeningOn(api!.port)],
    ]);
    const meter = [...pids.values()].every((p) => p !== undefined) ? new CpuMeter(pids as Map<string, number>) : undefined;
    meter?.start();
    const system = await runLaunch(
      // The services run with AUTH=on and the test keys (internal/testing/service-process.ts), as deployed.
      { ...base, url: `${ingest!.url}/messages`, verifyUrl: api!.url, verifyTimeoutMs: Math.max(base.verifyTimeoutMs, 120_000), key: TEST_KEYS.operator },
      { progress: true },
    );
    console.log(`whole system:   ${summaryLine(system)}`);
    if (meter) console.log(meter.line(system.posts));
    const systemUs = meter?.systemUs(system.posts) ?? Number.NaN;
    for (const m of system.mismatches.slice(0, 5)) console.log(`  off: ${m.channel}: ${m.problems.join("; ")}`);

    const ratio = rate(system) / rate(inMemory);
    const settleMs = system.verify?.settleMs ?? NaN;
    console.log("");
    console.log(`discard server       ${rate(baseline).toFixed(0).padStart(7)} messages/s`);
    console.log(`in-memory reference  ${rate(inMemory).toFixed(0).padStart(7)} messages/s   (${inMemory.verify?.ok ? "every rocket exact" : "NOT exact"})`);
    console.log(`whole system         ${rate(system).toFixed(0).padStart(7)} messages/s   (${(rate(system) / rate(baseline)).toFixed(3)} of discard)`);
    console.log(`system / reference   ${ratio.toFixed(3).padStart(7)}   (goal >= ${RATIO_GOAL}: ${ratio >= RATIO_GOAL ? "met" : "NOT met"})`);
    const cpuGoal = base.keepAlive ? CPU_GOAL_US.keepAlive : CPU_GOAL_US.newConnection;
    console.log(`system CPU           ${systemUs.toFixed(0).padStart(7)} us per message (goal <= ${cpuGoal} us: ${systemUs <= cpuGoal ? "met" : "NOT met"})`);
    console.log(
      `settle time          ${settleMs.toFixed(0).padStart(7)} ms  (goal <= ${SETTLE_GOAL_MS} ms: ` +
        `${system.verify?.ok && settleMs <= SETTLE_GOAL_MS ? "met" : "NOT met"}${system.verify?.ok ? "" : ", state NOT exact"})`,
    );
    if (!system.verify?.ok) process.exitCode = 1;
  } finally {
    await Promise.all(services.map((s) => s.stop("SIGTERM", 10_000)));
    await nats.dispose();
  }
}

await main();
