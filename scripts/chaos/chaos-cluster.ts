// The system a chaos run works on, as production runs it: a 3-node NATS
// JetStream cluster (R3, every write flushed to disk before its ack, as
// Kubernetes, compose and `npm run cluster` run it) and 2 ingest, 3
// sequencers, 2 APIs as real processes, every one given all three nodes,
// with short ownership timings so that failover fits in the run.
//
// It supervises its services the way Kubernetes or `npm start` would: a
// service that exits when nobody meant it to (or fails to get ready) is
// started again with backoff, and every such exit is recorded, so the run
// reports it instead of hiding it. The faults say which services are meant
// to be down or paused; the supervisor leaves those alone. Every process's
// whole log is written to the run's log directory.

import { join } from "node:path";
import { NatsCluster } from "../../internal/testing/nats-server.js";
import { ServiceProcess, type ServiceName } from "../../internal/testing/service-process.js";
import { formatNatsLine, formatPinoLine } from "../start/log-lines.mjs";

/** Ownership timings short enough for failover to fit in a run (as in the whole-system tests), and three replicas. */
export const LEASE_TTL_MS = 2000;
export const CHAOS_SERVICE_ENV = {
  LEASE_TTL_MS: String(LEASE_TTL_MS),
  HEARTBEAT_MS: "500",
  ACK_WAIT_MS: "3000",
  RETRY_DELAY_MS: "200",
  STREAM_REPLICAS: "3",
  LOG_LEVEL: "info",
};

/** JetStream's sync_interval where Rockets is deployed (docs/nats.md, "Durability"). */
export const SYNC_INTERVAL = "always";
const READY_TIMEOUT_MS = 30_000;
const SUPERVISE_EVERY_MS = 250;
const MAX_BACKOFF_MS = 5000;

export type Wanted = "up" | "down" | "paused";

/** One service process and what the run wants of it right now. */
export interface Member {
  label: string;
  process: ServiceProcess;
  want: Wanted;
  starting: Promise<void> | undefined;
}

export interface UnplannedExit {
  label: string;
  /** Milliseconds since the cluster started. */
  at: number;
  detail: string;
}

export interface ChaosClusterOptions {
  partitions: number;
  logDir: string;
  /** Progress lines for the person watching. */
  say: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last lines of a log, for an error message; pino's JSON and nats-server's lines made readable. */
export function tail(text: string, lines: number): string {
  return text
    .trimEnd()
    .split("\n")
    .slice(-lines)
    .map((line) => formatPinoLine(line) ?? formatNatsLine(line) ?? line)
    .join("\n");
}

export class ChaosCluster {
  readonly unplannedExits: UnplannedExit[] = [];
  private readonly startedAt = performance.now();
  private watchdog: NodeJS.Timeout | undefined;
  private disposed = false;

  private constructor(
    readonly nats: NatsCluster,
    readonly ingests: Member[],
    readonly sequencers: Member[],
    readonly apis: Member[],
    private readonly say: (line: string) => void,
  ) {}

  /** Starts the nodes, then the services one at a time (several Node processes starting at once starve a 2-core machine). */
  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const nats = await NatsCluster.start(3, { logDir: options.logDir, syncInterval: SYNC_INTERVAL });
    const member = async (name: ServiceName, label: string): Promise<Member> => ({
      label,
      want: "up",
      starting: undefined,
      process: await ServiceProcess.create(name, {
        natsUrl: nats.urls,
        logFile: join(options.logDir, `${label}.log`),
        env: {
          ...CHAOS_SERVICE_ENV,
          PARTITIONS: String(options.partitions),
          NATS_CLIENT_NAME: label,
          ...(name === "sequencer" && { INSTANCE_ID: label }),
        },
      }),
    });
    const cluster = new ChaosCluster(
      nats,
      [await member("ingest", "ingest-1"), await member("ingest", "ingest-2")],
      [await member("sequencer", "seq-1"), await member("sequencer", "seq-2"), await member("sequencer", "seq-3")],
      [await member("api", "api-1"), await member("api", "api-2")],
      options.say,
    );
    try {
      for (const m of cluster.members) await cluster.bringUp(m);
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    cluster.watchdog = setInterval(() => cluster.supervise(), SUPERVISE_EVERY_MS);
    return cluster;
  }

  get members(): Member[] {
    return [...this.ingests, ...this.sequencers, ...this.apis];
  }

  private now(): number {
    return performance.now() - this.startedAt;
  }

  /**
   * Starts the member (unless it runs) and resolves once it is ready. A start
   * that fails (the process exits, or is not ready in time) is an unplanned
   * exit: recorded, and retried with backoff until it works or the cluster is
   * disposed.
   */
  bringUp(m: Member): Promise<void> {
    m.want = "up";
    if (m.starting) return m.starting;
    m.starting = (async () => {
      let backoff = 500;
      while (!this.disposed && m.want === "up") {
        try {
          await m.process.launch(READY_TIMEOUT_MS);
          return;
        } catch (err) {
          await m.process.stop("SIGKILL");
          if (this.disposed) return;
          const first = (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
          const last = tail(m.process.logs(), 1).slice(0, 300);
          this.unplannedExits.push({ label: m.label, at: this.now(), detail: `${first} / last log line: ${last}` });
          this.say(`${m.label} failed to start (${first}); starting it again in ${backoff} ms`);
          await sleep(backoff);
          backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
        }
      }
    })().finally(() => {
      m.starting = undefined;
    });
    return m.starting;
  }

  /** SIGKILLs the member and keeps it down until `bringUp`. */
  async kill(m: Member): Promise<void> {
    m.want = "down";
    await m.process.stop("SIGKILL");
  }

  pause(m: Member): void {
    m.want = "paused";
    m.process.signal("SIGSTOP");
  }

  resume(m: Member): void {
    m.process.signal("SIGCONT");
    m.want = "up";
  }

  /**
   * Stops restarting anything: the run is being cut short (Ctrl-C reaches the
   * whole process group, so the services stop on their own), and what is
   * still running is about to be stopped.
   */
  halt(): void {
    this.disposed = true;
    clearInterval(this.watchdog);
  }

  /** Members meant to be up that are not running and not being started have exited on their own: start them again. */
  private supervise(): void {
    for (const m of this.members) {
      if (m.want !== "up" || m.starting || m.process.running) continue;
      const last = tail(m.process.logs(), 1).slice(0, 300);
      this.unplannedExits.push({ label: m.label, at: this.now(), detail: `exited on its own / last log line: ${last}` });
      this.say(`${m.label} exited on its own; starting it again`);
      void this.bringUp(m);
    }
  }

  /** Process ids of everything still running, for a last-resort kill when this process dies abruptly. */
  pids(): number[] {
    const running = [...this.members.map((m) => m.process), ...this.nats.servers].filter((p) => p.running);
    return running.map((p) => p.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** The last lines of every process's log, to explain a failure. */
  tails(lines: number): string {
    const parts = this.members.map((m) => `--- ${m.label} (${m.process.url}) ---\n${tail(m.process.logs(), lines)}`);
    for (const s of this.nats.servers) parts.push(`--- nats ${s.serverName} (${s.url}) ---\n${tail(s.logs(), lines)}`);
    return parts.join("\n");
  }

  /** Stops every service (a paused one is continued first), then the nodes, and removes their stores. */
  async dispose(): Promise<void> {
    this.halt();
    await Promise.all(this.members.map((m) => m.process.stop("SIGTERM", 5000)));
    await this.nats.dispose();
  }
}
