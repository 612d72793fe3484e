// Test harness: real nats-server processes with JetStream on free loopback
// ports and temporary store directories. Tests never mock NATS; when the
// binary is missing they fail and say how to install it.
//
// Each server runs from a configuration file written into its store
// directory by the renderer `npm run cluster` uses, so the harness's clusters
// are configured exactly like a local one. A server (or a cluster's node) can
// be killed and started again on the same ports and store, as after a crash.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { renderNatsConfig } from "../../scripts/start/nats-config.mjs";

export const NATS_SERVER_BIN = process.env["NATS_SERVER_BIN"] ?? "nats-server";

/** The oldest server the project runs on (scripts/prereqs.mjs installs a newer one; docs/nats.md says why). */
export const NATS_MIN_VERSION: readonly [number, number] = [2, 11];

let checkedVersion: string | undefined;

/**
 * Refuses, with a clear message, a missing nats-server or one older than the
 * project's line: tests on another server would not test what users run.
 */
export function assertNatsServerInstalled(): string {
  if (checkedVersion) return checkedVersion;
  const probe = spawnSync(NATS_SERVER_BIN, ["--version"], { encoding: "utf8" });
  const howTo = "`npm test` installs it (scripts/prereqs.mjs), or set NATS_SERVER_BIN to a nats-server >= 2.11";
  if (probe.error || probe.status !== 0) {
    throw new Error(`${NATS_SERVER_BIN} is not installed or not on PATH: ${howTo}.`);
  }
  const version = /v?(\d+)\.(\d+)\.(\d+)/.exec(`${probe.stdout}${probe.stderr}`);
  const [major, minor] = [Number(version?.[1]), Number(version?.[2])];
  const [minMajor, minMinor] = NATS_MIN_VERSION;
  if (!version || major < minMajor || (major === minMajor && minor < minMinor)) {
    throw new Error(
      `${NATS_SERVER_BIN} is ${version?.[0] ?? "of unknown version"}; the project needs nats-server >= ${minMajor}.${minMinor} ` +
        `(older servers lack per-key TTLs and priority groups and have cluster bugs the design must not meet): ${howTo}.`,
    );
  }
  checkedVersion = `${version[1]}.${version[2]}.${version[3]}`;
  return checkedVersion;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface NatsServerOptions {
  /** Reuse a store directory (to restart a server with its data). */
  storeDir?: string;
  port?: number;
  /** Cluster wiring, set by NatsCluster.start. */
  cluster?: { name: string; port: number; routes: number[] };
  serverName?: string;
  /** Append everything the server prints, across restarts, to this file (logs() keeps only the tail). */
  logFile?: string;
  /**
   * JetStream's `sync_interval`: "always" (fsync every write before the ack)
   * or a duration; unset is the server's default (every 2 minutes).
   */
  syncInterval?: string;
  /**
   * Configuration files to include as they are (deploy/nats/accounts.conf:
   * the deployed users and permissions), copied beside the rendered file.
   */
  include?: string[];
  /** The server's environment besides this process's (the passwords an included file reads as $VARIABLES). */
  env?: Record<string, string>;
}

/** The configuration file's name inside the store directory. */
const CONFIG_FILE = "nats.conf";

export class NatsServer {
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    private readonly options: NatsServerOptions,
    private readonly ownsStore: boolean,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    assertNatsServerInstalled();
    const port = options.port ?? (await freePort());
    const monitorPort = await freePort();
    const ownsStore = options.storeDir === undefined;
    const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), "rockets-nats-"));
    const server = new NatsServer(port, monitorPort, storeDir, options, ownsStore);
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** The process id while running (benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The server's name (`server_name`), which JetStream reports as a stream's leader. */
  get serverName(): string {
    return this.options.serverName ?? `rockets-test-${this.port}`;
  }

  private writeConfig(): string {
    const { cluster, syncInterval } = this.options;
    const file = join(this.storeDir, CONFIG_FILE);
    const text = renderNatsConfig({
      serverName: this.serverName,
      host: "127.0.0.1",
      port: this.port,
      monitorPort: this.monitorPort,
      storeDir: this.storeDir,
      ...(syncInterval !== undefined && { syncInterval }),
      ...(cluster && {
        cluster: { name: cluster.name, port: cluster.port, routes: cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`) },
      }),
    });
    const includes = (this.options.include ?? []).map((path) => {
      const name = `include-${basename(path)}`;
      copyFileSync(path, join(this.storeDir, name));
      // Relative: nats-server resolves an include against the including file's directory.
      return `include ./${name}\n`;
    });
    writeFileSync(file, text + includes.join(""));
    return file;
  }

  /** Starts the process (again, after stop/kill) on the same ports and store; the log keeps what came before. */
  async launch(): Promise<void> {
    if (this.running) return;
    if (this.output) this.note(`--- nats-server ${this.serverName} started again on its store ---\n`);
    const env = { ...process.env, ...this.options.env };
    const child = spawn(NATS_SERVER_BIN, ["-c", this.writeConfig()], { stdio: ["ignore", "pipe", "pipe"], env });
    this.child = child;
    const keep = (chunk: Buffer) => this.note(chunk.toString());
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    await this.waitHealthy(this.options.cluster ? 30_000 : 10_000);
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Standalone: /healthz says JetStream is up. Clustered: the server must also see a meta leader.
    const path = this.options.cluster ? "/healthz" : "/healthz?js-enabled-only=true";
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`nats-server exited during start:\n${this.output}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`nats-server not healthy after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Fetches a monitoring endpoint (/varz, /jsz, ...) as JSON. */
  async monitor<T = unknown>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}${path}`);
    return (await res.json()) as T;
  }

  /** Stops the process; SIGKILL simulates a crash, SIGTERM a clean stop. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the process and removes the temporary store. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }

  logs(): string {
    return this.output;
  }

  private note(text: string): void {
    this.output = (this.output + text).slice(-100_000);
    if (this.options.logFile) appendFileSync(this.options.logFile, text);
  }
}

export class NatsCluster {
  private constructor(readonly servers: NatsServer[]) {}

  /**
   * Starts an N-node JetStream cluster on loopback (server names n1..nN) and
   * waits until it elects a meta leader. With `logDir`, node nK's whole log
   * goes to `<logDir>/nats-nK.log`.
   */
  static async start(size = 3, options: { logDir?: string; syncInterval?: string } = {}): Promise<NatsCluster> {
    assertNatsServerInstalled();
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const name = `rockets-test-${process.pid}`;
    const servers = await Promise.all(
      clusterPorts.map((port, i) =>
        NatsServer.start({
          serverName: `n${i + 1}`,
          cluster: { name, port, routes: clusterPorts.filter((p) => p !== port) },
          ...(options.logDir && { logFile: join(options.logDir, `nats-n${i + 1}.log`) }),
          ...(options.syncInterval !== undefined && { syncInterval: options.syncInterval }),
        }),
      ),
    );
    return new NatsCluster(servers);
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** The node called `serverName`. */
  server(serverName: string): NatsServer {
    const server = this.servers.find((s) => s.serverName === serverName);
    if (!server) throw new Error(`no node named ${serverName} in this cluster (${this.servers.map((s) => s.serverName).join(", ")})`);
    return server;
  }

  /**
   * The node leading a stream's replicas, as JetStream reports it
   * (`jsm.streams.info(stream).cluster.leader`). Asks the nodes that are
   * running, and waits through an election (no leader yet) up to `timeoutMs`:
   * on a 2-core machine shared with the rest of the suite an election after
   * a SIGKILL once took longer than 15 s (every node's Raft timers slip
   * together), so the wait is generous; how quickly the system itself
   * recovers is measured by the chaos run, not here.
   */
  async streamLeader(stream: string, timeoutMs = 30_000): Promise<NatsServer> {
    const deadline = Date.now() + timeoutMs;
    let last = "no answer yet";
    while (Date.now() < deadline) {
      const running = this.servers.filter((s) => s.running).map((s) => s.url);
      const nc = await connect({ servers: running, timeout: 2000 }).catch((err: unknown) => {
        last = String(err);
        return undefined;
      });
      if (nc) {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          const leader = (await jsm.streams.info(stream)).cluster?.leader;
          if (leader) return this.server(leader);
          last = "the stream has no leader (election under way)";
        } catch (err) {
          last = err instanceof Error ? err.message : String(err);
        } finally {
          await nc.close();
        }
      }
      await sleep(200);
    }
    throw new Error(`no leader of stream ${stream} found within ${timeoutMs} ms: ${last}`);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.dispose()));
  }
}
