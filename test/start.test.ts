// `npm start` as a user runs it: the whole system from one command, data kept
// across restarts, a crashed service brought back, a clean exit on SIGTERM and
// on Ctrl-C; and the ways it refuses to run rather than run badly: a data
// directory already in use, a damaged store, NATS out of reach, a
// configuration the services refuse.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { basicFromUrl } from "../internal/testing/api-keys.js";
import { freePort, NatsServer } from "../internal/testing/nats-server.js";
import { poll, ScriptProcess } from "./script-process.js";

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
  await new Promise((r) => child.once("exit", r));
  return child.pid!;
}

const started: ScriptProcess[] = [];
const dataDir = mkdtempSync(join(tmpdir(), "rockets-start-"));
afterAll(async () => {
  await Promise.all(started.map((s) => s.dispose()));
  rmSync(dataDir, { recursive: true, force: true });
});

/** The environment of one `npm start`: the shared data directory and a free port for everything, unless given. */
async function startEnv(ports: Record<string, string> = {}) {
  return {
    DATA_DIR: dataDir,
    NATS_PORT: String(await freePort()),
    NATS_MONITOR_PORT: String(await freePort()),
    INGEST_PORT: String(await freePort()),
    SEQUENCER_PORT: String(await freePort()),
    API_PORT: String(await freePort()),
    ...ports,
  };
}

describe("npm start", () => {
  it("runs the whole system, brings back a crashed service, refuses a second start on its data, stops cleanly, and keeps the rockets across restarts", async () => {
    const env = await startEnv();
    const ingest = `http://127.0.0.1:${env.INGEST_PORT}`;
    const api = `http://127.0.0.1:${env.API_PORT}`;
    const channel = randomUUID();
    const launched = {
      metadata: { channel, messageNumber: 1, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketLaunched" },
      message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
    };
    let key = "";
    const readRocket = async () => {
      const res = await fetch(`${api}/rockets/${channel}`, { headers: { authorization: `Bearer ${key}` } });
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
    };

    const first = ScriptProcess.launch("scripts/start.mjs", env);
    started.push(first);
    await first.waitForOutput(/Rockets is running/, 90_000);
    // The banner's lines can arrive in more than one read of the pipe: its last line says all of it is in.
    await first.waitForOutput(/Ctrl-C stops everything\./, 10_000);
    // Closed by default: bound to this machine only, with a key made for this data directory, readable only by this user.
    expect(first.output).toContain(`http://127.0.0.1:${env.INGEST_PORT}/messages`);
    expect(first.output).toContain(`http://127.0.0.1:${env.API_PORT}/rockets`);
    expect(first.output).toMatch(/^ingest +\| .*ingest listening.*host=127\.0\.0\.1/m);
    expect(first.output).not.toMatch(/AUTH=off/);
    key = readFileSync(join(dataDir, "api-key"), "utf8").trim();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const file of ["api-key", "api-keys"]) expect(statSync(join(dataDir, file)).mode & 0o777, file).toBe(0o600);
    expect(readFileSync(join(dataDir, "api-keys"), "utf8")).not.toContain(key);
    const printedUrl = `http://rockets:${key}@127.0.0.1:${env.INGEST_PORT}/messages`;
    expect(first.output).toContain(`Try: npm run launch -- ${printedUrl} --verify http://rockets:${key}@127.0.0.1:${env.API_PORT}`);
    expect(first.output).toContain(`./rockets launch "${printedUrl}"`);
    // Each service's lines carry its name; pino's JSON is turned into readable text.
    for (const name of ["nats", "ingest", "sequencer", "api"]) expect(first.output).toMatch(new RegExp(`^${name} +\\| `, "m"));
    expect(first.output).not.toMatch(/^(ingest|sequencer|api) +\| \{"level"/m);
    // NATS from the rendered config: JetStream in DATA_DIR, flushing to disk every 100 ms (docs/nats.md).
    const jsz = (await (await fetch(`http://127.0.0.1:${env.NATS_MONITOR_PORT}/jsz`)).json()) as { config: { sync_interval: number; sync_always?: boolean; store_dir: string } };
    expect(jsz.config).toMatchObject({ sync_interval: 100_000_000, store_dir: join(dataDir, "jetstream") });
    expect(jsz.config.sync_always ?? false).toBe(false);
    // The accounts and users of every deployment (deploy/nats/accounts.conf): each service as its own user, in its own account.
    const connz = (await (await fetch(`http://127.0.0.1:${env.NATS_MONITOR_PORT}/connz?auth=true`)).json()) as { connections: Array<{ authorized_user?: string; account?: string }> };
    expect(new Set(connz.connections.map((c) => `${c.authorized_user}@${c.account}`))).toEqual(new Set(["ingest@INGEST", "sequencer@ROCKETS", "api@API"]));
    expect(statSync(join(dataDir, "nats-users", "rockets-admin")).mode & 0o777).toBe(0o600);
    expect(first.output).toContain(`NATS_USER=rockets-admin NATS_PASSWORD="$(cat '`);

    // A second start on the same data, even on other ports, refuses: two nats-servers on one store corrupt it.
    const second = ScriptProcess.launch("scripts/start.mjs", await startEnv());
    started.push(second);
    expect(await second.exited(30_000)).toBe(1);
    expect(second.output).toContain(`${dataDir} is in use by pid ${first.pid}`);
    expect(second.output).toMatch(/stop it first/);
    expect(second.output).not.toMatch(/started \(pid/);

    // Nothing is taken without the key.
    expect((await fetch(`${ingest}/messages`, { method: "POST", body: JSON.stringify(launched) })).status).toBe(401);
    expect((await fetch(`${api}/rockets`)).status).toBe(401);
    // The test program's way: the printed URL's userinfo as Basic auth, no Content-Type header.
    const posted = await fetch(`${ingest}/messages`, { method: "POST", body: JSON.stringify(launched), headers: { "content-type": "", ...basicFromUrl(printedUrl) } });
    expect(posted.status).toBe(202);
    const rocket = await poll("the launched rocket in the API", 15_000, readRocket);
    expect(rocket).toMatchObject({ channel, type: "Falcon-9", mission: "ARTEMIS", speed: 500, status: "launched", lastMessageNumber: 1 });

    // A crashed API comes back on its own.
    const apiPid = Number((await first.waitForOutput(/^api +\| started \(pid (\d+)\)/m, 1000))[1]);
    process.kill(apiPid, "SIGKILL");
    await first.waitForOutput(/^api +\| exited \(SIGKILL\); restarting/m, 5000);
    await first.waitForOutput(new RegExp(`^api +\\| started \\(pid (?!${apiPid}\\))\\d+\\)`, "m"), 10_000);
    expect(await poll("the rocket after the API restarted", 30_000, readRocket)).toMatchObject({ channel, lastMessageNumber: 1 });

    expect(await first.stop("SIGTERM")).toBe(0);
    expect(first.output).toMatch(/^rockets +\| stopped$/m);
    // Services stop before nats-server, so they can drain their work.
    const natsStopped = first.output.search(/^nats +\| stopped$/m);
    for (const name of ["ingest", "sequencer", "api"]) {
      const stopped = first.output.search(new RegExp(`^${name} +\\| stopped$`, "m"));
      expect(stopped, `${name} stopped`).toBeGreaterThan(-1);
      expect(stopped).toBeLessThan(natsStopped);
    }

    // A start that died without cleaning up left its lock: the next one takes it over.
    writeFileSync(join(dataDir, ".rockets.lock"), JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: new Date().toISOString() }));
    // With AUTH=off it says loudly, on every start, what that exposes; and then takes requests without a key.
    const third = ScriptProcess.launchWithNpm("start", { ...env, AUTH: "off" });
    started.push(third);
    await third.waitForOutput(/Rockets is running/, 90_000);
    expect(third.output).toMatch(/took over .*\.rockets\.lock/);
    // Once at start and once under the banner; the warnings go to stderr and the banner to stdout, two pipes
    // read apart, so the second can come in after "Rockets is running" was seen (it once did, under load).
    await third.waitForOutput(/(WARNING: AUTH=off - authentication is OFF[\s\S]*){2}/, 10_000);
    expect(third.output.match(/WARNING: AUTH=off - authentication is OFF/g)).toHaveLength(2);
    expect(third.output).toMatch(/anyone who can reach these ports can post messages/);
    expect(third.output).not.toContain(key);
    expect((await fetch(`${api}/rockets/${channel}`)).status).toBe(200);
    expect(await poll("the rocket after a restart", 15_000, readRocket)).toMatchObject({ channel, status: "launched", lastMessageNumber: 1 });

    // Ctrl-C in the terminal reaches npm and the start alike: one clean stop, exit 0, every process reported stopped.
    expect(await third.interrupt()).toBe(0);
    for (const name of ["ingest", "sequencer", "api", "nats", "rockets"]) expect(third.output).toMatch(new RegExp(`^${name} +\\| stopped$`, "m"));
    expect(third.output).not.toMatch(/again: killing/);
    expect(readdirSync(dataDir)).not.toContain(".rockets.lock");
  }, 300_000);

  it("refuses to start when a port is taken, naming the variable to change", async () => {
    const busy: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => busy.listen(port, "0.0.0.0", r));
    try {
      const env = await startEnv({ API_PORT: String(port) });
      const run = ScriptProcess.launch("scripts/start.mjs", env);
      started.push(run);
      const code = await new Promise<number | null>((resolve) => {
        const wait = () => (run.exitCode !== null ? resolve(run.exitCode) : setTimeout(wait, 50));
        wait();
      });
      expect(code).toBe(1);
      expect(run.output).toContain(`port ${port} (api) is already in use`);
      expect(run.output).toContain("API_PORT");
    } finally {
      await new Promise((r) => busy.close(r));
    }
  }, 30_000);
});

describe("npm start, where the system cannot run", () => {
  it("says what is not ready and why, never prints the banner, and exits 1 when NATS cannot be reached", async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const run = ScriptProcess.launch("scripts/start.mjs", { ...(await startEnv()), NATS_URL: url, START_TIMEOUT_SECONDS: "8" });
    started.push(run);
    // Each service says so itself, at once.
    for (const name of ["ingest", "sequencer", "api"]) {
      await run.waitForOutput(new RegExp(`^${name} +\\| .*WARN .*cannot reach nats; retrying until it answers .*servers=${url}`, "m"), 15_000);
    }
    expect(await run.exited(30_000)).toBe(1);
    // Waiting for the same thing, the three are named together.
    expect(run.output).toMatch(new RegExp(`not ready after 8 s \\(START_TIMEOUT_SECONDS\\): ingest, sequencer, api: cannot reach NATS at ${url}: .*refused.*; retrying$`, "m"));
    expect(run.output).not.toContain("Rockets is running");
    for (const name of ["ingest", "sequencer", "api"]) expect(run.output).toMatch(new RegExp(`^${name} +\\| stopped$`, "m"));
  }, 60_000);

  it("stops everything and exits 78, restarting nothing, when the services refuse their configuration", async () => {
    const run = ScriptProcess.launch("scripts/start.mjs", { ...(await startEnv()), NATS_URL: `nats://127.0.0.1:${await freePort()}`, PARTITIONS: "abc" });
    started.push(run);
    expect(await run.exited(30_000)).toBe(78);
    expect(run.output).toMatch(/PARTITIONS must be an integer/);
    expect(run.output).toMatch(/^(ingest|sequencer|api) +\| exited \(code 78: its configuration is refused, see above\); not restarting$/m);
    expect(run.output).toMatch(/refuses its configuration \(exit 78/);
    expect(run.output).not.toMatch(/restarting in/);
    expect(run.output).not.toContain("Rockets is running");
  }, 60_000);

  it("reports a damaged store at once and exits 1 instead of leaving services not ready", async () => {
    const damaged = mkdtempSync(join(tmpdir(), "rockets-damaged-"));
    try {
      // A store with a stream, whose metadata is then damaged.
      const nats = await NatsServer.start({ storeDir: damaged });
      const nc = await connect({ servers: nats.url });
      await (await jetstreamManager(nc)).streams.add({ name: "DAMAGED", subjects: ["damaged.>"] });
      await nc.close();
      await nats.stop();
      writeFileSync(join(damaged, "jetstream", "$G", "streams", "DAMAGED", "meta.inf"), "not what nats-server wrote");

      const run = ScriptProcess.launch("scripts/start.mjs", await startEnv({ DATA_DIR: damaged }));
      started.push(run);
      expect(await run.exited(60_000)).toBe(1);
      expect(run.output).toContain(`the JetStream store in ${damaged} is damaged`);
      // A store made before NATS had accounts (its streams in the default account) is moved to the account that holds them now.
      expect(run.output).toContain(`moved the streams of ${damaged} to the account that holds them now`);
      expect(run.output).toMatch(/stream 'ROCKETS > DAMAGED' could not be recovered/);
      expect(run.output).toMatch(/two nats-servers sharing one directory/);
      expect(run.output).toContain(`mv ${damaged} ${damaged}.damaged`);
      expect(run.output).not.toContain("Rockets is running");
      expect(run.output).not.toMatch(/^(ingest|sequencer|api) +\| started/m);
    } finally {
      rmSync(damaged, { recursive: true, force: true });
    }
  }, 90_000);
});
