// `npm start`: the whole system on one machine. Sets up what it needs (npm
// dependencies, Debian's nats-server), then runs nats-server with JetStream
// (data under ./data or $DATA_DIR) and the three services as supervised child
// processes with prefixed, readable logs. The data survives: a second start
// finds the same rockets.
//
// Guarantees:
// - One start per data directory (start/data-dir-lock.mjs): a second one
//   refuses, naming the pid that holds it and how to proceed; a lock left by
//   a start that died is taken over.
// - A store nats-server cannot open, or opens damaged, is reported at once
//   (start/store-health.mjs) and the start fails, instead of services that
//   never get ready.
// - "Rockets is running" is printed only once every service answers ready.
//   Until then, every REPORT_EVERY_MS, it says what is not ready and why (each
//   service's /readyz reason: NATS out of reach, still loading...). Past
//   START_TIMEOUT_SECONDS it stops everything and exits 1; a service that
//   refuses its configuration (exit 78) stops everything at once, exit 78.
// - A crashed process is restarted with backoff, except for a refused
//   configuration (start/supervisor.mjs).
// - Closed by default: every service binds to 127.0.0.1 (HOST to change it)
//   and runs with AUTH=on; the first start on a data directory makes its API
//   key (start/local-keys.mjs: the digest in DATA_DIR/api-keys, the key in
//   DATA_DIR/api-key, both mode 0600) and every start prints it in the
//   console's address and a ready-to-paste launch command. AUTH=off is
//   warned about loudly on every start.
// - NATS has the accounts and users of every deployment
//   (deploy/nats/accounts.conf; start/local-nats-users.mjs makes their
//   passwords in DATA_DIR/nats-users): each service connects as its own user,
//   and a store made before the accounts is moved to them once.
// - Ctrl-C or SIGTERM stops the services first (each drains its work), then
//   nats-server, reports each as stopped, and exits 0 (1 if one did not stop
//   cleanly). The copy of the same Ctrl-C that npm forwards is not taken for
//   a second one; a real second one kills everything at once.
//
// Environment: DATA_DIR, NATS_PORT (4222), NATS_MONITOR_PORT (8222),
// INGEST_PORT (8088), SEQUENCER_PORT (9090), API_PORT (8080),
// START_TIMEOUT_SECONDS (90); HOST (127.0.0.1); AUTH (on), AUTH_KEYS_FILE
// (DATA_DIR/api-keys, made on first start), ROCKETS_API_KEY (the key to
// print when AUTH_KEYS_FILE is your own); NATS_URL to use an existing NATS server instead
// of starting one; NATS_SYNC_INTERVAL (JetStream's sync_interval, 100ms here;
// `always` to survive power loss); everything else (LOG_LEVEL, PARTITIONS,
// ...) is passed on to the services.

import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensureNatsServer, ensureNodeModules, ROOT } from "./prereqs.mjs";
import { DataDirInUseError, lockDataDir } from "./start/data-dir-lock.mjs";
import { isPortFree, portFromEnv, waitForHttp } from "./start/local-host.mjs";
import { AUTH_OFF_WARNING, localKeys, serviceAuthEnv, urlWithKey } from "./start/local-keys.mjs";
import { adoptStoreBeforeAccounts, localNatsUsers, placeAccountsFile } from "./start/local-nats-users.mjs";
import { PREFIX_WIDTH } from "./start/log-lines.mjs";
import { renderNatsConfig } from "./start/nats-config.mjs";
import { checkStore } from "./start/store-health.mjs";
import { onStopSignals } from "./start/stop-signals.mjs";
import { stopOnRefusedConfig, Supervised } from "./start/supervisor.mjs";

const env = process.env;
const color = Boolean(process.stdout.isTTY) && !env.NO_COLOR;
const PREFIX = `${"rockets".padEnd(PREFIX_WIDTH)}| `;
const say = (message) => process.stdout.write(`${PREFIX}${message}\n`);
const complain = (message) => process.stderr.write(`${PREFIX}${message}\n`);

/** How often a start still waiting for its services says what it waits for. */
const REPORT_EVERY_MS = 10_000;

function fail(message) {
  complain(message);
  process.exit(1);
}

function port(name, fallback) {
  try {
    return portFromEnv(env, name, fallback);
  } catch (err) {
    return fail(err.message);
  }
}

function seconds(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a whole number of seconds, got ${JSON.stringify(raw)}`);
  return n;
}

const ports = {
  nats: port("NATS_PORT", 4222),
  natsMonitor: port("NATS_MONITOR_PORT", 8222),
  ingest: port("INGEST_PORT", 8088),
  sequencer: port("SEQUENCER_PORT", 9090),
  api: port("API_PORT", 8080),
};
const startTimeoutSeconds = seconds("START_TIMEOUT_SECONDS", 90);
const externalNats = env.NATS_URL;
const dataDir = resolve(env.DATA_DIR || join(ROOT, "data"));
// Only this machine by default: a run that others should reach is a deployment (compose, Kubernetes), or HOST set on purpose.
const serviceHost = env.HOST || "127.0.0.1";
const probeHost = serviceHost === "0.0.0.0" || serviceHost === "::" ? "127.0.0.1" : serviceHost;
const natsMonitorUrl = `http://127.0.0.1:${ports.natsMonitor}`;

/** Fails early, naming the variable to change, when a port is taken (often: a previous run still going). */
async function checkPortFree(name, host, p, variable) {
  if (!(await isPortFree(host, p))) fail(`port ${p} (${name}) is already in use: stop what uses it, or set ${variable} to another port`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Undefined when the service answers ready; else why not, as it says (or as its process is). */
async function notReady(service) {
  const processStatus = service.status();
  if (processStatus) return processStatus;
  try {
    const res = await fetch(`http://${probeHost}:${ports[service.name]}/readyz`, { signal: AbortSignal.timeout(2000) });
    if (res.ok) return undefined;
    const body = await res.json().catch(() => ({}));
    return body.reason ?? `readyz answered ${res.status}`;
  } catch {
    return "not listening yet";
  }
}

/** Creates DATA_DIR when missing; fails with the reason when it cannot be used. */
function prepareDataDir() {
  try {
    mkdirSync(dataDir, { recursive: true });
    accessSync(dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    fail(`cannot use DATA_DIR ${dataDir}: ${err.message}. Point DATA_DIR at a directory this user can write.`);
  }
}

let stopping = false;
let lock;
let nats;
let services = [];

// Children live in their own process groups; never leave them behind if this process dies unexpectedly.
process.on("exit", () => {
  for (const s of [...services, nats]) s?.killNow();
  lock?.release();
});

/** Stops the services, then nats-server, and exits with `code` (1 instead of 0 if one did not stop cleanly). */
async function shutdown(why, code) {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping the services${nats ? ", then nats-server" : ""}${code === 0 ? " (Ctrl-C again to kill at once)" : ""}`);
  const clean = await Promise.all(services.map((s) => s.stop("SIGTERM")));
  if (nats) clean.push(await nats.stop("SIGTERM"));
  lock?.release();
  const allClean = clean.every(Boolean);
  say(allClean ? "stopped" : "stopped, but not every process stopped cleanly (see above)");
  process.exit(code !== 0 ? code : allClean ? 0 : 1);
}

onStopSignals({
  stopping: () => stopping,
  stop: (signal) => void shutdown(signal, 0),
  killAll: () => {
    for (const s of [...services, nats]) s?.killNow();
  },
  say,
});

ensureNodeModules();
// The operator console the API serves at `/` (after the install: the build needs esbuild).
await (await import("./build-console.mjs")).buildConsole();
const natsBin = externalNats ? undefined : ensureNatsServer();

// The data directory also holds the API key, with or without a NATS of our own.
prepareDataDir();
let keys;
try {
  keys = localKeys(dataDir, env);
} catch (err) {
  fail(`cannot set up the API key in ${dataDir}: ${err.message}`);
}
if (keys.auth === "off") for (const line of AUTH_OFF_WARNING) complain(line);
else if (keys.created) say(`made an API key for this data directory (read, write, metrics): ${keys.keysFile}, the key in ${join(dataDir, "api-key")}`);

if (!externalNats) {
  try {
    lock = lockDataDir(dataDir);
  } catch (err) {
    if (err instanceof DataDirInUseError) fail(err.message);
    throw err;
  }
  if (lock.tookOver) say(`took over ${lock.file}: the start that left it (pid ${lock.tookOver.pid ?? "unknown"}) is no longer running`);
  await checkPortFree("nats-server", "127.0.0.1", ports.nats, "NATS_PORT");
  await checkPortFree("nats-server monitoring", "127.0.0.1", ports.natsMonitor, "NATS_MONITOR_PORT");
}
await checkPortFree("ingest", serviceHost, ports.ingest, "INGEST_PORT");
await checkPortFree("sequencer", serviceHost, ports.sequencer, "SEQUENCER_PORT");
await checkPortFree("api", serviceHost, ports.api, "API_PORT");

const natsUrl = externalNats ?? `nats://127.0.0.1:${ports.nats}`;

let natsHealthy = false;
/** The NATS users of our own server; with NATS_URL, the services use the NATS_* credentials they are given. */
let natsUsers;
if (!externalNats) {
  try {
    natsUsers = localNatsUsers(dataDir);
  } catch (err) {
    fail(`cannot set up the NATS users in ${dataDir}: ${err.message}`);
  }
  if (adoptStoreBeforeAccounts(dataDir)) say(`moved the streams of ${dataDir} to the account that holds them now (deploy/nats/accounts.conf)`);
  say(`starting nats-server with JetStream, data in ${dataDir}`);
  // A 100 ms group commit: a 2xx survives any process crash, and an OS crash or power loss
  // takes at most the last 100 ms (docs/nats.md, "Durability"); NATS_SYNC_INTERVAL=always for power-loss safety.
  // Written only now, under the directory's lock: never over the file of a server that runs on it.
  const configFile = join(dataDir, "nats.conf");
  try {
    writeFileSync(
      configFile,
      renderNatsConfig({
        serverName: "rockets-local",
        host: "127.0.0.1",
        port: ports.nats,
        monitorPort: ports.natsMonitor,
        storeDir: dataDir,
        syncInterval: env.NATS_SYNC_INTERVAL || "100ms",
        accounts: placeAccountsFile(ROOT, dataDir),
      }),
    );
  } catch (err) {
    fail(`cannot write nats-server's configuration: ${err.message}`);
  }
  nats = new Supervised("nats", {
    cmd: natsBin,
    args: ["-c", configFile],
    cwd: ROOT,
    env: { ...env, ...natsUsers.serverEnv },
    out: process.stdout,
    color,
    stopTimeoutMs: 10_000,
    // Failing before it ever got healthy is a store or setup problem; restarting would only repeat it.
    restart: () => natsHealthy,
    onSpawn: (pid) => lock.update({ natsPid: pid }),
  });
}

services = ["ingest", "sequencer", "api"].map(
  (name) =>
    new Supervised(name, {
      cmd: process.execPath,
      args: ["--import", "tsx", join("cmd", name, "main.ts")],
      cwd: ROOT,
      env: { ...env, NATS_URL: natsUrl, HOST: serviceHost, PORT: String(ports[name]), ...serviceAuthEnv(keys), ...natsUsers?.serviceEnv(name) },
      out: process.stdout,
      color,
      stopTimeoutMs: 20_000,
      onGiveUp: stopOnRefusedConfig(name, complain, (why, code) => void shutdown(why, code)),
    }),
);

if (nats) {
  nats.start();
  natsHealthy = await waitForHttp(`${natsMonitorUrl}/healthz?js-enabled-only=true`, 30_000, () => !stopping && !nats.gaveUp);
  if (!natsHealthy && !stopping) {
    complain(
      nats.gaveUp
        ? `nats-server ${nats.status()} before it was ready; its last lines above say why.`
        : "nats-server did not become healthy within 30 s; its lines above say why.",
    );
    complain(`If they point at its store: ${dataDir} may be unreadable or damaged. Move it aside, or set DATA_DIR to another directory.`);
    await shutdown("nats-server could not start", 1);
  }
  const problems = stopping ? [] : await checkStore(natsMonitorUrl, { stillWanted: () => !stopping });
  if (problems.length > 0 && !stopping) {
    complain(`the JetStream store in ${dataDir} is damaged:`);
    for (const p of problems) complain(`  ${p}`);
    complain("Services on it would never get ready (two nats-servers sharing one directory damage a store like this).");
    complain(
      `Keep it for inspection and start on a fresh one (mv ${dataDir} ${dataDir}.damaged), or set DATA_DIR to another directory. ` +
        "The rockets' state lives in that store: a fresh one starts empty.",
    );
    await shutdown("the store is damaged", 1);
  }
}

if (!stopping) {
  for (const s of services) s.start();
  const deadline = Date.now() + startTimeoutSeconds * 1000;
  let reportAt = Date.now() + REPORT_EVERY_MS;
  while (!stopping) {
    const reasons = await Promise.all(services.map((s) => notReady(s)));
    const waiting = services.map((s, i) => [s.name, reasons[i]]).filter(([, why]) => why !== undefined);
    if (waiting.length === 0 || stopping) break;
    // Services waiting for the same thing (NATS out of reach, usually) are named together.
    const byReason = new Map();
    for (const [name, why] of waiting) byReason.set(why, [...(byReason.get(why) ?? []), name]);
    const list = [...byReason].map(([why, names]) => `${names.join(", ")}: ${why}`).join("; ");
    if (Date.now() >= deadline) {
      complain(`not ready after ${startTimeoutSeconds} s (START_TIMEOUT_SECONDS): ${list}`);
      await shutdown("the system did not get ready", 1);
    }
    if (Date.now() >= reportAt) {
      say(`waiting for ${list}`);
      reportAt = Date.now() + REPORT_EVERY_MS;
    }
    await sleep(250);
  }
  if (!stopping) {
    const host = serviceHost === "0.0.0.0" || serviceHost === "::" ? "localhost" : serviceHost.includes(":") ? `[${serviceHost}]` : serviceHost;
    const ingestUrl = `http://${host}:${ports.ingest}/messages`;
    const apiUrl = `http://${host}:${ports.api}`;
    const key = keys.auth === "on" ? (keys.key ?? "<key>") : undefined;
    say("Rockets is running:");
    say(`  ingest     POST ${ingestUrl}`);
    say(`  console    ${apiUrl}/${key ? "   (sign in with the key below)" : ""}`);
    say(`  API        ${apiUrl}/rockets   (docs ${apiUrl}/docs)`);
    say(`  sequencer  http://${host}:${ports.sequencer}/partitions   (and /metrics)`);
    say(`  NATS       ${natsUrl}${nats ? `   (monitoring ${natsMonitorUrl}, data ${dataDir})` : ""}`);
    if (natsUsers) say(`  topology   ${natsUsers.adminCommand(process.cwd())} npm run topology   (NATS's admin user; docs/security.md)`);
    if (key) {
      say(`  key        ${key}   (${keys.key ? `in ${join(dataDir, "api-key")}` : "not known here: set ROCKETS_API_KEY to print it"}; send it as Authorization: Bearer <key>)`);
      say(`Try: npm run launch -- ${urlWithKey(ingestUrl, key)} --verify ${urlWithKey(apiUrl, key)}`);
      say(`  or the operators' program: ./rockets launch "${urlWithKey(ingestUrl, key)}"`);
    } else {
      say(`Try: npm run launch -- ${ingestUrl} --verify ${apiUrl}`);
      for (const line of AUTH_OFF_WARNING) complain(line);
    }
    say("Ctrl-C stops everything.");
  }
}
