// `npm start` as a user runs it: the whole system from one command, data kept
// across restarts, a crashed service brought back, a clean exit on SIGTERM.

import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../internal/testing/nats-server.js";
import { poll, ScriptProcess } from "./script-process.js";

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
  it("runs the whole system, brings back a crashed service, stops cleanly, and keeps the rockets across restarts", async () => {
    const env = await startEnv();
    const ingest = `http://127.0.0.1:${env.INGEST_PORT}`;
    const api = `http://127.0.0.1:${env.API_PORT}`;
    const channel = randomUUID();
    const launched = {
      metadata: { channel, messageNumber: 1, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketLaunched" },
      message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
    };
    const readRocket = async () => {
      const res = await fetch(`${api}/rockets/${channel}`);
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
    };

    const first = ScriptProcess.launch("scripts/start.mjs", env);
    started.push(first);
    await first.waitForOutput(/Rockets is running/, 90_000);
    expect(first.output).toContain(`http://localhost:${env.INGEST_PORT}/messages`);
    expect(first.output).toContain(`http://localhost:${env.API_PORT}/rockets`);
    // Each service's lines carry its name; pino's JSON is turned into readable text.
    for (const name of ["nats", "ingest", "sequencer", "api"]) expect(first.output).toMatch(new RegExp(`^${name} +\\| `, "m"));
    expect(first.output).not.toMatch(/^(ingest|sequencer|api) +\| \{"level"/m);
    // NATS from the rendered config: JetStream in DATA_DIR, flushing to disk every 100 ms (docs/nats.md).
    const jsz = (await (await fetch(`http://127.0.0.1:${env.NATS_MONITOR_PORT}/jsz`)).json()) as { config: { sync_interval: number; sync_always?: boolean; store_dir: string } };
    expect(jsz.config).toMatchObject({ sync_interval: 100_000_000, store_dir: join(dataDir, "jetstream") });
    expect(jsz.config.sync_always ?? false).toBe(false);

    // The test program's way: no Content-Type header.
    const posted = await fetch(`${ingest}/messages`, { method: "POST", body: JSON.stringify(launched), headers: { "content-type": "" } });
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
    expect(first.output).toMatch(/^rockets +\| stopped/m);
    // Services stop before nats-server, so they can drain their work.
    const natsStopped = first.output.search(/^nats +\| stopped/m);
    for (const name of ["ingest", "sequencer", "api"]) {
      const stopped = first.output.search(new RegExp(`^${name} +\\| stopped`, "m"));
      expect(stopped, `${name} stopped`).toBeGreaterThan(-1);
      expect(stopped).toBeLessThan(natsStopped);
    }

    const second = ScriptProcess.launch("scripts/start.mjs", env);
    started.push(second);
    await second.waitForOutput(/Rockets is running/, 90_000);
    expect(await poll("the rocket after a restart", 15_000, readRocket)).toMatchObject({ channel, status: "launched", lastMessageNumber: 1 });
    expect(await second.stop("SIGTERM")).toBe(0);
  }, 240_000);

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
