// The whole system for whole-system tests: a real nats-server and the three
// services as real processes, configured the way an operator would (small
// partition count and short leases so failover fits in a test's time). They
// run with AUTH=on, the default, holding the test keys
// (internal/testing/api-keys.ts): tests send TEST_KEYS.writer to post,
// TEST_KEYS.reader to read (or TEST_KEYS.operator for both, as runLaunch's
// `key`) and scrape with TEST_KEYS.scraper.

import { NatsServer } from "../internal/testing/nats-server.js";
import { ServiceProcess, type ServiceName } from "../internal/testing/service-process.js";
import type { LaunchResult } from "../scripts/launch/launch.js";

/** Ownership timing short enough for a test, long enough not to flap on a busy 2-core machine. */
export const FAST_FAILOVER_ENV = {
  PARTITIONS: "8",
  LEASE_TTL_MS: "2000",
  HEARTBEAT_MS: "500",
  ACK_WAIT_MS: "3000",
  RETRY_DELAY_MS: "200",
};

export interface SystemOptions {
  sequencers?: number;
  apis?: number;
  env?: Record<string, string>;
}

export class RocketsSystem {
  private constructor(
    readonly nats: NatsServer,
    readonly ingest: ServiceProcess,
    readonly sequencers: ServiceProcess[],
    readonly apis: ServiceProcess[],
  ) {}

  static async start(options: SystemOptions = {}): Promise<RocketsSystem> {
    const nats = await NatsServer.start();
    const env = { ...FAST_FAILOVER_ENV, LOG_LEVEL: "info", ...options.env };
    const start = (name: ServiceName, extra: Record<string, string> = {}) =>
      ServiceProcess.start(name, { natsUrl: nats.url, env: { ...env, ...extra } });
    // One at a time: starting several Node processes at once on a busy
    // 2-core machine can starve each past its readiness timeout.
    const started: ServiceProcess[] = [];
    try {
      const ingest = await start("ingest");
      started.push(ingest);
      const sequencers: ServiceProcess[] = [];
      for (let i = 0; i < (options.sequencers ?? 1); i++) {
        sequencers.push(await start("sequencer", { INSTANCE_ID: `seq-${i + 1}` }));
        started.push(sequencers[i]!);
      }
      const apis: ServiceProcess[] = [];
      for (let i = 0; i < (options.apis ?? 1); i++) {
        apis.push(await start("api"));
        started.push(apis[i]!);
      }
      return new RocketsSystem(nats, ingest, sequencers, apis);
    } catch (err) {
      await Promise.all(started.map((s) => s.stop("SIGKILL")));
      await nats.dispose();
      throw err;
    }
  }

  get messagesUrl(): string {
    return `${this.ingest.url}/messages`;
  }

  get apiUrl(): string {
    return this.apis[0]!.url;
  }

  private get services(): ServiceProcess[] {
    return [this.ingest, ...this.sequencers, ...this.apis];
  }

  async dispose(): Promise<void> {
    await Promise.all(this.services.map((s) => s.stop("SIGTERM", 5000)));
    await this.nats.dispose();
  }

  /** The tail of every process's log, to explain a failure. */
  logs(lines = 40): string {
    const tail = (text: string) => text.trimEnd().split("\n").slice(-lines).join("\n");
    const parts = this.services.map((s) => `--- ${s.name} :${s.port}\n${tail(s.logs())}`);
    parts.push(`--- nats-server\n${tail(this.nats.logs())}`);
    return parts.join("\n");
  }

  /** Fails with the rockets that are off and the processes' logs unless every rocket verified exactly. */
  expectExact(result: LaunchResult): void {
    if (result.verify?.ok) return;
    const off = result.mismatches.slice(0, 10).map((m) => `${m.channel}: ${m.problems.join("; ")}`);
    throw new Error(
      `${result.mismatches.length} of ${result.expected.size} rockets not in their expected final state:\n` +
        `${off.join("\n")}\n${this.logs()}`,
    );
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `sent()` reaches `count`. */
export async function whenSent(progress: Promise<{ sent: () => number }>, count: number): Promise<void> {
  const p = await progress;
  while (p.sent() < count) await sleep(20);
}
