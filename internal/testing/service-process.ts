// Test harness: the real services started as child processes, the way users
// run them (`node --import tsx cmd/<service>/main.ts`), configured through the
// environment. Whole-system and fault tests kill them with real signals, and
// pause and resume them (SIGSTOP, SIGCONT) as a stalled VM or GC pause would.
// They run with AUTH=on, the default, holding the test keys
// (internal/testing/api-keys.ts) unless a test's env says otherwise.

import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bearer, TEST_KEYS, testAuthEnv } from "./api-keys.js";
import { freePort } from "./nats-server.js";

/**
 * Set by `npm test` (scripts/test.mjs) right after it compiled the services
 * into dist/: processes then run the compiled JavaScript, as the container
 * image does, and skip tsx's start-up (about 0.5 s of CPU per start, and the
 * suite starts services some hundred times). Anywhere else (a single file
 * run with vitest) they run from source, so a stale build is never tested.
 */
const RUN_BUILT = process.env["ROCKETS_TEST_RUN_BUILT"] === "1";

export const REPO_ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");

export type ServiceName = "ingest" | "sequencer" | "api";

export interface ServiceOptions {
  natsUrl: string | string[];
  /** Extra environment (PARTITIONS, INSTANCE_ID, ...). */
  env?: Record<string, string>;
  port?: number;
  /** Print the service's output as it comes (useful when debugging a test). */
  echo?: boolean;
  /** Extra node flags (e.g. --cpu-prof, which NODE_OPTIONS does not allow). */
  nodeArgs?: string[];
  /** Append everything the process prints, across restarts, to this file (logs() keeps only the tail). */
  logFile?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ServiceProcess {
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    readonly name: ServiceName,
    readonly port: number,
    private readonly options: ServiceOptions,
  ) {}

  /** A service with its port chosen, not started yet: `launch()` starts it (a supervisor retries that). */
  static async create(name: ServiceName, options: ServiceOptions): Promise<ServiceProcess> {
    return new ServiceProcess(name, options.port ?? (await freePort()), options);
  }

  /** Starts the service and waits until its /readyz answers 200. */
  static async start(name: ServiceName, options: ServiceOptions): Promise<ServiceProcess> {
    const service = await ServiceProcess.create(name, options);
    try {
      await service.launch();
    } catch (err) {
      // A service that never got ready must not outlive the test that started it.
      await service.stop("SIGKILL");
      throw err;
    }
    return service;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The process id while running (benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Starts the service without waiting for it to get ready, for tests of a
   * service that must not (no NATS, a configuration it refuses).
   */
  static async spawn(name: ServiceName, options: ServiceOptions): Promise<ServiceProcess> {
    const service = await ServiceProcess.create(name, options);
    service.spawnChild();
    return service;
  }

  /** (Re)starts the process on the same port and waits for readiness. */
  async launch(readyTimeoutMs = 30_000): Promise<void> {
    if (this.running) return;
    this.spawnChild();
    await this.waitReady(readyTimeoutMs);
  }

  private spawnChild(): void {
    if (this.output) this.note(`--- ${this.name} started again ---\n`);
    const servers = Array.isArray(this.options.natsUrl) ? this.options.natsUrl.join(",") : this.options.natsUrl;
    const env = {
      ...process.env,
      NATS_URL: servers,
      HOST: "127.0.0.1",
      PORT: String(this.port),
      LOG_LEVEL: process.env["SERVICE_LOG_LEVEL"] ?? "info",
      ...testAuthEnv(),
      ...this.options.env,
    };
    const entry = RUN_BUILT ? [join("dist", "cmd", this.name, "main.js")] : ["--import", "tsx", join("cmd", this.name, "main.ts")];
    const child = spawn(process.execPath, [...(this.options.nodeArgs ?? []), ...entry], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    const keep = (chunk: Buffer) => {
      const text = chunk.toString();
      this.output = (this.output + text).slice(-100_000);
      if (this.options.logFile) appendFileSync(this.options.logFile, text);
      if (this.options.echo) process.stderr.write(`[${this.name}:${this.port}] ${text}`);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
  }

  /** Resolves with the first match of `pattern` in the output; rejects after `timeoutMs` or when the process exits first. */
  async waitForLog(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output);
      if (m) return m;
      if (!this.running) throw new Error(`${this.name} exited (code ${this.child?.exitCode}) before logging ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not log ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await sleep(50);
    }
  }

  /** Resolves with the exit code once the process has exited by itself; rejects after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    const child = this.child;
    if (!child) throw new Error(`${this.name} was never started`);
    if (!this.running) return child.exitCode;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (result === "timeout") throw new Error(`${this.name} still running after ${timeoutMs} ms:\n${this.output}`);
    return result;
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited during start (code ${this.child?.exitCode}):\n${this.output}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Sends a signal and waits for the exit; returns the exit code (null when killed by the signal). */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 15_000): Promise<number | null> {
    const child = this.child;
    if (!child || !this.running) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill(signal);
    // A paused (SIGSTOPped) process only acts on the signal once it runs again.
    if (signal !== "SIGKILL") child.kill("SIGCONT");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /**
   * Sends a signal without waiting for anything (SIGSTOP / SIGCONT to pause and
   * resume the process). Returns false when the process is not running.
   */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    return this.child!.kill(signal);
  }

  /** The partitions a sequencer process owns now (its GET /partitions, with the scraper's key). */
  async ownedPartitions(): Promise<number[]> {
    const res = await fetch(`${this.url}/partitions`, { headers: bearer(TEST_KEYS.scraper) });
    if (!res.ok) throw new Error(`${this.name} answered GET /partitions with ${res.status}`);
    return ((await res.json()) as { partitions: number[] }).partitions;
  }

  logs(): string {
    return this.output;
  }

  private note(text: string): void {
    this.output += text;
    if (this.options.logFile) appendFileSync(this.options.logFile, text);
  }
}
