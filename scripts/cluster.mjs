// `npm run cluster`: the whole system as it runs in production, on one
// machine: a 3-node NATS JetStream cluster on loopback (server names n1..n3,
// each from its own configuration file and store under
// $DATA_DIR/cluster/nN), then 2 ingest, 3 sequencers and 2 APIs, every stream
// and bucket with 3 replicas and every service given all three nodes. Like
// `npm start` it sets up what it needs, prefixes every process's log lines,
// restarts a process that crashes, prints the URLs once everything is ready,
// and on Ctrl-C or SIGTERM stops the services first (each drains its work),
// then the NATS nodes, and exits 0. The data survives a restart.
//
// Ports are ranges starting at: NATS_PORT (4222, 4223, 4224),
// NATS_CLUSTER_PORT (6222..6224), NATS_MONITOR_PORT (8222..8224),
// INGEST_PORT (8088, 8089), SEQUENCER_PORT (9090..9092), API_PORT (8080,
// 8081). DATA_DIR (./data) holds the nodes' stores. Everything else
// (LOG_LEVEL, PARTITIONS, ...) is passed on to the services.
//
// Closed like `npm start`: services bind to 127.0.0.1 (HOST to change it)
// and run with AUTH=on; the first run makes an API key (read, write,
// metrics) in $DATA_DIR/cluster (api-keys: its digest; api-key: the key;
// both mode 0600; start/local-keys.mjs) and every run prints it in a
// ready-to-paste launch command. AUTH=off is warned about on every run.
//
// NATS as in Kubernetes: the accounts and users of deploy/nats/accounts.conf
// (each service connects as its own user; start/local-nats-users.mjs makes
// the passwords in $DATA_DIR/cluster/nats-users) and authenticated routes (a
// server without the route password cannot join). A cluster directory made
// before the accounts is refused with what to do: its streams belong to the
// default account in the cluster's own metadata.
//
// Durability as in Kubernetes: every node flushes each write to disk before
// acknowledging it (sync_interval "always"), so a 2xx from ingest is on disk
// on a majority; NATS_SYNC_INTERVAL (a duration like 100ms) trades that for
// speed. docs/nats.md ("Durability") has the measured cost.

import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureNatsServer, ensureNodeModules, ROOT } from "./prereqs.mjs";
import { isPortFree, portFromEnv, waitForHttp } from "./start/local-host.mjs";
import { AUTH_OFF_WARNING, localKeys, serviceAuthEnv, urlWithKey } from "./start/local-keys.mjs";
import { localNatsUsers, placeAccountsFile, storeBeforeAccounts } from "./start/local-nats-users.mjs";
import { PREFIX_WIDTH } from "./start/log-lines.mjs";
import { renderNatsConfig } from "./start/nats-config.mjs";
import { onStopSignals } from "./start/stop-signals.mjs";
import { stopOnRefusedConfig, Supervised } from "./start/supervisor.mjs";

const NODES = 3;
const COUNTS = { ingest: 2, sequencer: 3, api: 2 };
const CLUSTER_NAME = "rockets-local";

const env = process.env;
const color = Boolean(process.stdout.isTTY) && !env.NO_COLOR;
const say = (message) => process.stdout.write(`${"cluster".padEnd(PREFIX_WIDTH)}| ${message}\n`);

function fail(message) {
  process.stderr.write(`${"cluster".padEnd(PREFIX_WIDTH)}| ${message}\n`);
  process.exit(1);
}

/** `count` consecutive ports starting at the variable's value (or `fallback`). */
function portRange(variable, fallback, count) {
  let first;
  try {
    first = portFromEnv(env, variable, fallback);
  } catch (err) {
    return fail(err.message);
  }
  if (first + count - 1 > 65_535) fail(`${variable}=${first} leaves no room for ${count} consecutive ports`);
  return Array.from({ length: count }, (_, i) => first + i);
}

const ports = {
  nats: portRange("NATS_PORT", 4222, NODES),
  natsCluster: portRange("NATS_CLUSTER_PORT", 6222, NODES),
  natsMonitor: portRange("NATS_MONITOR_PORT", 8222, NODES),
  ingest: portRange("INGEST_PORT", 8088, COUNTS.ingest),
  sequencer: portRange("SEQUENCER_PORT", 9090, COUNTS.sequencer),
  api: portRange("API_PORT", 8080, COUNTS.api),
};
const VARIABLES = {
  nats: "NATS_PORT",
  natsCluster: "NATS_CLUSTER_PORT",
  natsMonitor: "NATS_MONITOR_PORT",
  ingest: "INGEST_PORT",
  sequencer: "SEQUENCER_PORT",
  api: "API_PORT",
};
const clusterDir = resolve(env.DATA_DIR || join(ROOT, "data"), "cluster");
// Only this machine by default, as for npm start.
const serviceHost = env.HOST || "127.0.0.1";
const probeHost = serviceHost === "0.0.0.0" || serviceHost === "::" ? "127.0.0.1" : serviceHost;

ensureNodeModules();
// The operator console each API serves at `/` (after the install: the build needs esbuild).
await (await import("./build-console.mjs")).buildConsole();
const natsBin = ensureNatsServer();

let keys;
try {
  mkdirSync(clusterDir, { recursive: true });
  keys = localKeys(clusterDir, env);
} catch (err) {
  fail(`cannot set up the API key in ${clusterDir}: ${err.message}`);
}
let natsUsers;
try {
  natsUsers = localNatsUsers(clusterDir);
} catch (err) {
  fail(`cannot set up the NATS users in ${clusterDir}: ${err.message}`);
}
const before = ports.nats.map((_, i) => join(clusterDir, `n${i + 1}`)).filter(storeBeforeAccounts);
if (before.length > 0) {
  fail(
    `${before.join(", ")} hold streams made before NATS had accounts (deploy/nats/accounts.conf), which a cluster cannot move to them. ` +
      `Keep them elsewhere (mv ${clusterDir} ${clusterDir}.before-accounts) or set DATA_DIR to another directory; a fresh cluster starts empty.`,
  );
}
if (keys.auth === "off") for (const line of AUTH_OFF_WARNING) say(line);

// Every port before anything starts: a half-started cluster is harder to clean up than a refusal.
const taken = new Set();
for (const [what, list] of Object.entries(ports)) {
  const host = what.startsWith("nats") ? "127.0.0.1" : serviceHost;
  for (const p of list) {
    if (taken.has(p)) fail(`port ${p} is given to two things; move ${VARIABLES[what]}`);
    taken.add(p);
    if (!(await isPortFree(host, p))) fail(`port ${p} (${what}) is already in use: stop what uses it, or set ${VARIABLES[what]} to another first port`);
  }
}

const natsUrl = ports.nats.map((p) => `nats://127.0.0.1:${p}`).join(",");

const nodes = ports.nats.map((port, i) => {
  const serverName = `n${i + 1}`;
  const storeDir = join(clusterDir, serverName);
  mkdirSync(storeDir, { recursive: true });
  const configFile = join(storeDir, "nats.conf");
  writeFileSync(
    configFile,
    renderNatsConfig({
      serverName,
      host: "127.0.0.1",
      port,
      monitorPort: ports.natsMonitor[i],
      storeDir,
      syncInterval: env.NATS_SYNC_INTERVAL || "always",
      cluster: { name: CLUSTER_NAME, port: ports.natsCluster[i], authenticatedRoutes: NODES - 1 },
      accounts: placeAccountsFile(ROOT, storeDir),
    }),
  );
  // The routes and their credentials come from the environment, as in Kubernetes: the password stays out of the file.
  const routes = ports.natsCluster.filter((_, j) => j !== i).map((p, j) => [`NATS_ROUTE_${j}`, natsUsers.routeUrl("127.0.0.1", p)]);
  return new Supervised(`nats-${i + 1}`, {
    cmd: natsBin,
    args: ["-c", configFile],
    cwd: ROOT,
    env: { ...env, ...natsUsers.serverEnv, ...Object.fromEntries(routes) },
    out: process.stdout,
    color,
    stopTimeoutMs: 10_000,
  });
});

const SHORT = { ingest: "ingest", sequencer: "seq", api: "api" };
const services = Object.entries(COUNTS).flatMap(([name, count]) =>
  Array.from({ length: count }, (_, i) => {
    const label = `${SHORT[name]}-${i + 1}`;
    const supervised = new Supervised(label, {
      cmd: process.execPath,
      args: ["--import", "tsx", join("cmd", name, "main.ts")],
      cwd: ROOT,
      env: {
        ...env,
        STREAM_REPLICAS: env.STREAM_REPLICAS || "3",
        NATS_URL: natsUrl,
        NATS_CLIENT_NAME: label,
        HOST: serviceHost,
        PORT: String(ports[name][i]),
        ...(name === "sequencer" && { INSTANCE_ID: label }),
        ...serviceAuthEnv(keys),
        ...natsUsers.serviceEnv(name),
      },
      out: process.stdout,
      color,
      stopTimeoutMs: 20_000,
      onGiveUp: stopOnRefusedConfig(label, say, (why, code) => void shutdown(why, code)),
    });
    supervised.readyUrl = `http://${probeHost}:${ports[name][i]}/readyz`;
    return supervised;
  }),
);

let stopping = false;

/** Stops the services, then the NATS nodes, and exits with `code`. */
async function shutdown(why, code) {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping the services, then the NATS nodes${code === 0 ? " (Ctrl-C again to kill at once)" : ""}`);
  await Promise.all(services.map((s) => s.stop("SIGTERM")));
  await Promise.all(nodes.map((n) => n.stop("SIGTERM")));
  say("stopped");
  process.exit(code);
}

onStopSignals({
  stopping: () => stopping,
  stop: (signal) => void shutdown(signal, 0),
  killAll: () => {
    for (const s of [...services, ...nodes]) s.killNow();
  },
  say,
});
// Children live in their own process groups; never leave them behind if this process dies unexpectedly.
process.on("exit", () => {
  for (const s of [...services, ...nodes]) s.killNow();
});

say(`starting a ${NODES}-node NATS JetStream cluster, stores in ${clusterDir}`);
for (const node of nodes) node.start();
// A clustered node's /healthz answers 200 once JetStream runs and the nodes have elected a meta leader.
const healthy = await Promise.all(ports.natsMonitor.map((p) => waitForHttp(`http://127.0.0.1:${p}/healthz`, 60_000, () => !stopping)));
if (!stopping && healthy.includes(false)) {
  await Promise.all(nodes.map((n) => n.stop()));
  fail(`NATS nodes not healthy within 60 s: ${nodes.filter((_, i) => !healthy[i]).map((n) => n.name).join(", ")}; see their logs above`);
}

if (!stopping) {
  for (const s of services) s.start();
  const ready = await Promise.all(services.map((s) => waitForHttp(s.readyUrl, 120_000, () => !stopping)));
  if (!stopping) {
    const late = services.filter((_, i) => !ready[i]).map((s) => s.name);
    if (late.length) say(`not ready after 120 s: ${late.join(", ")} (see their logs above); still supervising`);
    const host = serviceHost === "0.0.0.0" || serviceHost === "::" ? "localhost" : serviceHost.includes(":") ? `[${serviceHost}]` : serviceHost;
    const list = (name, path) => ports[name].map((p) => `http://${host}:${p}${path}`).join("  ");
    const key = keys.auth === "on" ? (keys.key ?? "<key>") : undefined;
    say("Rockets (3-node cluster, 3 replicas) is running:");
    say(`  ingest     POST ${list("ingest", "/messages")}`);
    say(`  API        ${list("api", "/rockets")}   (docs at /docs)`);
    say(`  sequencer  ${list("sequencer", "/partitions")}   (and /metrics)`);
    say(`  NATS       ${natsUrl}`);
    say(`  NATS monitoring  ${ports.natsMonitor.map((p) => `http://127.0.0.1:${p}/jsz`).join("  ")}`);
    say(`  data       ${clusterDir}`);
    say(`  topology   ${natsUsers.adminCommand(process.cwd())} NATS_URL=${natsUrl} npm run topology   (NATS's admin user)`);
    if (key) say(`  key        ${key}   (${keys.key ? `in ${join(clusterDir, "api-key")}` : "not known here: set ROCKETS_API_KEY to print it"})`);
    say(`Try: npm run launch -- ${urlWithKey(`http://${host}:${ports.ingest[0]}/messages`, key)} --verify ${urlWithKey(`http://${host}:${ports.api[1]}`, key)}`);
    if (!key) for (const line of AUTH_OFF_WARNING) say(line);
    say("Ctrl-C stops everything.");
  }
}
