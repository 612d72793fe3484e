// `npm start`: the whole system on one machine. Sets up what it needs (npm
// dependencies, Debian's nats-server), then runs nats-server with JetStream
// (data under ./data or $DATA_DIR) and the three services as supervised child
// processes with prefixed, readable logs. A crashed process is restarted with
// backoff. Ctrl-C or SIGTERM stops the services first (each drains its work),
// then nats-server, and exits 0. The data survives: a second start finds the
// same rockets.
//
// Environment: DATA_DIR, NATS_PORT (4222), NATS_MONITOR_PORT (8222),
// INGEST_PORT (8088), SEQUENCER_PORT (9090), API_PORT (8080); NATS_URL to use
// an existing NATS server instead of starting one; NATS_SYNC_INTERVAL
// (JetStream's sync_interval, 100ms here; `always` to survive power loss);
// everything else (LOG_LEVEL, PARTITIONS, ...) is passed on to the services.

import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureNatsServer, ensureNodeModules, ROOT } from "./prereqs.mjs";
import { isPortFree, portFromEnv, waitForHttp } from "./start/local-host.mjs";
import { PREFIX_WIDTH } from "./start/log-lines.mjs";
import { renderNatsConfig } from "./start/nats-config.mjs";
import { Supervised } from "./start/supervisor.mjs";

const env = process.env;
const color = Boolean(process.stdout.isTTY) && !env.NO_COLOR;
const say = (message) => process.stdout.write(`${"rockets".padEnd(PREFIX_WIDTH)}| ${message}\n`);

function fail(message) {
  process.stderr.write(`${"rockets".padEnd(PREFIX_WIDTH)}| ${message}\n`);
  process.exit(1);
}

function port(name, fallback) {
  try {
    return portFromEnv(env, name, fallback);
  } catch (err) {
    return fail(err.message);
  }
}

const ports = {
  nats: port("NATS_PORT", 4222),
  natsMonitor: port("NATS_MONITOR_PORT", 8222),
  ingest: port("INGEST_PORT", 8088),
  sequencer: port("SEQUENCER_PORT", 9090),
  api: port("API_PORT", 8080),
};
const externalNats = env.NATS_URL;
const dataDir = resolve(env.DATA_DIR || join(ROOT, "data"));
const serviceHost = env.HOST || "0.0.0.0";
const probeHost = serviceHost === "0.0.0.0" || serviceHost === "::" ? "127.0.0.1" : serviceHost;

/** Fails early, naming the variable to change, when a port is taken (often: a previous run still going). */
async function checkPortFree(name, host, p, variable) {
  if (!(await isPortFree(host, p))) fail(`port ${p} (${name}) is already in use: stop what uses it, or set ${variable} to another port`);
}

ensureNodeModules();
// The operator console the API serves at `/` (after the install: the build needs esbuild).
await (await import("./build-console.mjs")).buildConsole();
const natsBin = externalNats ? undefined : ensureNatsServer();

if (!externalNats) {
  await checkPortFree("nats-server", "127.0.0.1", ports.nats, "NATS_PORT");
  await checkPortFree("nats-server monitoring", "127.0.0.1", ports.natsMonitor, "NATS_MONITOR_PORT");
}
await checkPortFree("ingest", serviceHost, ports.ingest, "INGEST_PORT");
await checkPortFree("sequencer", serviceHost, ports.sequencer, "SEQUENCER_PORT");
await checkPortFree("api", serviceHost, ports.api, "API_PORT");

const natsUrl = externalNats ?? `nats://127.0.0.1:${ports.nats}`;
let stopping = false;

let nats;
if (!externalNats) {
  mkdirSync(dataDir, { recursive: true });
  say(`starting nats-server with JetStream, data in ${dataDir}`);
  // A 100 ms group commit: a 2xx survives any process crash, and an OS crash or power loss
  // takes at most the last 100 ms (docs/nats.md, "Durability"); NATS_SYNC_INTERVAL=always for power-loss safety.
  const configFile = join(dataDir, "nats.conf");
  writeFileSync(
    configFile,
    renderNatsConfig({
      serverName: "rockets-local",
      host: "127.0.0.1",
      port: ports.nats,
      monitorPort: ports.natsMonitor,
      storeDir: dataDir,
      syncInterval: env.NATS_SYNC_INTERVAL || "100ms",
    }),
  );
  nats = new Supervised("nats", {
    cmd: natsBin,
    args: ["-c", configFile],
    cwd: ROOT,
    env,
    out: process.stdout,
    color,
    stopTimeoutMs: 10_000,
  });
}

const services = ["ingest", "sequencer", "api"].map(
  (name) =>
    new Supervised(name, {
      cmd: process.execPath,
      args: ["--import", "tsx", join("cmd", name, "main.ts")],
      cwd: ROOT,
      env: { ...env, NATS_URL: natsUrl, HOST: serviceHost, PORT: String(ports[name]) },
      out: process.stdout,
      color,
      stopTimeoutMs: 20_000,
    }),
);

async function shutdown(signal) {
  if (stopping) {
    say(`${signal} again: killing everything now`);
    for (const s of [...services, nats]) s?.killNow();
    process.exit(1);
  }
  stopping = true;
  say(`${signal}: stopping the services, then nats-server (${signal} again to kill at once)`);
  await Promise.all(services.map((s) => s.stop("SIGTERM")));
  if (nats) await nats.stop("SIGTERM");
  say("stopped");
  process.exit(0);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => void shutdown(signal));
}
// Children live in their own process groups; never leave them behind if this process dies unexpectedly.
process.on("exit", () => {
  for (const s of [...services, nats]) s?.killNow();
});

if (nats) {
  nats.start();
  const healthy = await waitForHttp(`http://127.0.0.1:${ports.natsMonitor}/healthz?js-enabled-only=true`, 30_000, () => !stopping);
  if (!healthy && !stopping) {
    await nats.stop();
    fail("nats-server did not become healthy within 30 s; see its log above");
  }
}
if (!stopping) {
  for (const s of services) s.start();
  const ready = await Promise.all(
    services.map((s) => waitForHttp(`http://${probeHost}:${ports[s.name]}/readyz`, 60_000, () => !stopping)),
  );
  if (!stopping) {
    const late = services.filter((_, i) => !ready[i]).map((s) => s.name);
    if (late.length) say(`not ready after 60 s: ${late.join(", ")} (see their logs above); still supervising`);
    say("Rockets is running:");
    say(`  ingest     POST http://localhost:${ports.ingest}/messages`);
    say(`  console    http://localhost:${ports.api}/`);
    say(`  API        http://localhost:${ports.api}/rockets   (docs http://localhost:${ports.api}/docs)`);
    say(`  sequencer  http://localhost:${ports.sequencer}/metrics`);
    say(`  NATS       ${natsUrl}${nats ? `   (monitoring http://127.0.0.1:${ports.natsMonitor}, data ${dataDir})` : ""}`);
    say(`Try: npm run launch -- http://localhost:${ports.ingest}/messages --verify http://localhost:${ports.api}`);
    say("Ctrl-C stops everything.");
  }
}
