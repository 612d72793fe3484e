// `npm start` as a user runs it: the whole system from one command, data kept
// across restarts, a crashed service brought back, a clean exit on SIGTERM.

import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../internal/testing/nats-server.js";
import { REPO_ROOT } from "../internal/testing/service-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class StartProcess {
  output = "";
  private constructor(private readonly child: ChildProcess) {
    const keep = (c: Buffer) => (this.output += c.toString());
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
  }

  static launch(env: Record<string, string>): StartProcess {
    const child = spawn(process.execPath, ["scripts/start.mjs"], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new StartProcess(child);
  }

  get exitCode(): number | null {
    return this.child.exitCode;
  }

  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`start.mjs exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await sleep(100);
    }
  }

  /** Every child pid it reported, for last-resort cleanup. */
  pids(): number[] {
    return [...this.output.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 60_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once("exit", (code) => resolve(code)));
    this.child.kill(signal);
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (result === "timeout") throw new Error(`start.mjs still running ${timeoutMs} ms after ${signal}:\n${this.output}`);
    return result;
  }

  /** Leaves nothing running, whatever happened in the test. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

async function poll<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${what} not seen within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}

const started: StartProcess[] = [];
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

    const first = StartProcess.launch(env);
    started.push(first);
    await first.waitForOutput(/Rockets is running/, 90_000);
    expect(first.output).toContain(`http://localhost:${env.INGEST_PORT}/messages`);
    expect(first.output).toContain(`http://localhost:${env.API_PORT}/rockets`);
    // Each service's lines carry its name; pino's JSON is turned into readable text.
    for (const name of ["nats", "ingest", "sequencer", "api"]) expect(first.output).toMatch(new RegExp(`^${name} +\\| `, "m"));
    expect(first.output).not.toMatch(/^(ingest|sequencer|api) +\| \{"level"/m);

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

    const second = StartProcess.launch(env);
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
      const run = StartProcess.launch(env);
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
