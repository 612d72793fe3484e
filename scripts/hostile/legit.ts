// The legit rockets: one or more in every partition, each posting its next
// message in order at a steady pace from the legit address (a new connection
// per POST, retried until 2xx, as the operators' program does), and after
// each 2xx reading the rocket through the API until its state shows that
// message. The time from the POST's 2xx to that read is the update latency.
// A message not visible within `visibleTimeoutMs` counts as a timeout (worse
// than any bound). verify() then checks every rocket shows exactly the state
// of applying its accepted messages once, in order (the domain's apply()).

import { apply, type Rocket } from "../../internal/domain/rocket.js";
import type { RocketMessage } from "../../internal/domain/message.js";
import { LEGIT_ADDRESS, postUntilAccepted, request } from "./client.js";
import { message } from "./messages.js";

export interface LegitOptions {
  ingestUrl: string;
  apiUrl: string;
  /** Pause between one rocket's messages (from one POST's start to the next). */
  periodMs: number;
  visibleTimeoutMs: number;
  pollMs: number;
}

interface LegitRocket {
  channel: string;
  partition: number;
  next: number;
  /** The state after every accepted message. */
  expected: Rocket | null;
}

/** The i-th message of a legit rocket: a launch, then speed changes and now and then a new mission; never an explosion. */
function legitMessage(channel: string, partition: number, n: number): RocketMessage {
  if (n === 1) return message(channel, 1, "RocketLaunched", { type: `Legit-${partition}`, mission: "LEGIT", launchSpeed: 500 });
  if (n % 10 === 0) return message(channel, n, "RocketMissionChanged", { newMission: `LEGIT-${n % 3}` });
  if (n % 3 === 0) return message(channel, n, "RocketSpeedDecreased", { by: (n % 5) * 7 });
  return message(channel, n, "RocketSpeedIncreased", { by: (n % 7) * 10 + 1 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LegitRun {
  /** Milliseconds from 2xx to visible, one per accepted message; Infinity where it never showed within the timeout. */
  latencies: number[];
  /** Non-2xx answers and failed connections on legit POSTs (each retried). */
  refusedPosts: number;
  /** Each update when it was accepted (ms since start()) and its rocket's partition, beside `latencies`: where a slow p99 came from. */
  samples: { atMs: number; partition: number; ms: number }[];
}

/** The `n` slowest updates, said as "1213 ms at +4.1 s (partition 3)": one stall of a whole process shows as many partitions at once, one stuck partition as one. */
export function slowest(run: LegitRun, n = 5): string {
  return [...run.samples]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((s) => `${Number.isFinite(s.ms) ? s.ms.toFixed(0) : "never"} ms at +${(s.atMs / 1000).toFixed(1)} s (partition ${s.partition})`)
    .join(", ");
}

export class LegitFleet {
  private readonly rockets: LegitRocket[];
  private running: Promise<void>[] = [];
  private stopped = true;
  private run: LegitRun = { latencies: [], refusedPosts: 0, samples: [] };
  private startedAt = 0;

  constructor(
    channelsByPartition: string[][],
    private readonly options: LegitOptions,
  ) {
    this.rockets = channelsByPartition.flatMap((channels, partition) => channels.map((channel) => ({ channel, partition, next: 1, expected: null })));
  }

  get channels(): string[] {
    return this.rockets.map((r) => r.channel);
  }

  start(): void {
    this.stopped = false;
    this.run = { latencies: [], refusedPosts: 0, samples: [] };
    this.startedAt = performance.now();
    this.running = this.rockets.map((r) => this.loop(r));
  }

  /** Stops after each rocket's current message (its visibility wait included); returns what this run measured. */
  async stop(): Promise<LegitRun> {
    this.stopped = true;
    await Promise.all(this.running);
    return this.run;
  }

  /** Every rocket's state through the API against the expected one; waits up to `timeoutMs` for the last accepted messages to show. */
  async verify(timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const problems: string[] = [];
    for (const r of this.rockets) {
      if (!r.expected) continue;
      let shown: Record<string, unknown> | undefined;
      for (;;) {
        shown = await this.read(r.channel);
        if (shown && Number(shown["lastMessageNumber"]) >= r.expected.lastMessageNumber) break;
        if (Date.now() > deadline) break;
        await sleep(this.options.pollMs);
      }
      const at = Number(shown?.["lastMessageNumber"] ?? 0);
      if (at < r.expected.lastMessageNumber) {
        problems.push(`${r.channel} (partition ${r.partition}): shows message ${at}, ${r.expected.lastMessageNumber} accepted (not applied within ${timeoutMs} ms)`);
        continue;
      }
      const off = Object.entries(r.expected)
        .filter(([k, v]) => shown?.[k] !== v)
        .map(([k, v]) => `${k} ${JSON.stringify(shown?.[k])} (expected ${JSON.stringify(v)})`);
      if (off.length > 0) problems.push(`${r.channel} (partition ${r.partition}): ${off.join(", ")}`);
    }
    return problems;
  }

  private async loop(r: LegitRocket): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      const msg = legitMessage(r.channel, r.partition, r.next);
      const { tries } = await postUntilAccepted(`${this.options.ingestUrl}/messages`, JSON.stringify(msg), LEGIT_ADDRESS, 100);
      const accepted = performance.now();
      this.run.refusedPosts += tries - 1;
      r.expected = apply(r.expected, msg);
      r.next += 1;
      const ms = await this.visibleAfter(r.channel, msg.metadata.messageNumber, accepted);
      this.run.latencies.push(ms);
      this.run.samples.push({ atMs: accepted - this.startedAt, partition: r.partition, ms });
      await sleep(Math.max(0, this.options.periodMs - (Date.now() - started)));
    }
  }

  private async visibleAfter(channel: string, messageNumber: number, since: number): Promise<number> {
    for (;;) {
      const shown = await this.read(channel);
      const elapsed = performance.now() - since;
      if (shown && Number(shown["lastMessageNumber"]) >= messageNumber) return elapsed;
      if (elapsed > this.options.visibleTimeoutMs) return Infinity;
      await sleep(this.options.pollMs);
    }
  }

  private async read(channel: string): Promise<Record<string, unknown> | undefined> {
    try {
      const answer = await request(`${this.options.apiUrl}/rockets/${channel}`, { from: LEGIT_ADDRESS, timeoutMs: 5000 });
      return answer.status === 200 ? (JSON.parse(answer.body) as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The q-quantile (0..1) of `values` (nearest rank); NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
