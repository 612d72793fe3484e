// The attacks of issue 14's "Why", each as an outsider would make it, from
// its own loopback address. An attack has an optional setup (not measured:
// e.g. loading 50k rockets before hammering the summary), the attack itself
// (run while the legit rockets post and are measured), and checks of its own
// on top of the suite's common ones (legit latency, exactness, memory).
// Sizes come from the profile: the full run uses the figures, the
// short one (inside `npm test`) the same shapes scaled down.

import net from "node:net";
import { MAX_SPEED, type RocketMessage } from "../../internal/domain/message.js";
import { exactMean } from "../../internal/view/fleet-summary.js";
import { request, requestHeaders, type Answer } from "./client.js";
import { batches, channelsPerPartition, launched, message, speedUp } from "./messages.js";
import { quantile } from "./legit.js";
import type { Profile } from "./profile.js";

export interface AttackContext {
  ingestUrl: string;
  apiUrl: string;
  partitions: number;
  profile: Profile;
  /** The attacker's source address. */
  from: string;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Attack {
  key: string;
  title: string;
  /** Before the legit rockets start: not measured. Returns a line for the report. */
  setup?(ctx: AttackContext): Promise<string>;
  /** The attack, while the legit rockets post and are measured. */
  run(ctx: AttackContext): Promise<Check[]>;
  /** After the legit rockets stopped (nothing changes any more). */
  settled?(ctx: AttackContext): Promise<Check[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PostTally {
  byStatus: Map<number, number>;
  failed: number;
}

function tally(): PostTally {
  return { byStatus: new Map(), failed: 0 };
}

function count(t: PostTally, a: Answer | undefined): void {
  if (!a) t.failed += 1;
  else t.byStatus.set(a.status, (t.byStatus.get(a.status) ?? 0) + 1);
}

function describe(t: PostTally): string {
  const parts = [...t.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${n}x${s}`);
  if (t.failed > 0) parts.push(`${t.failed} failed`);
  return parts.join(" ") || "none";
}

/**
 * POSTs every body with `concurrency` at once from `from`. With `untilAccepted`
 * a non-2xx is sent again (after retryMs) until `deadline`: for attacks whose
 * data must get in.
 */
async function postAll(
  url: string,
  bodies: string[],
  from: string,
  { concurrency = 4, untilAccepted = false, deadline = Infinity, retryMs = 200 } = {},
): Promise<PostTally> {
  const t = tally();
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      for (;;) {
        let answer: Answer | undefined;
        try {
          answer = await request(url, { body, from, timeoutMs: 30_000 });
        } catch {
          answer = undefined;
        }
        count(t, answer);
        const ok = answer !== undefined && answer.status >= 200 && answer.status < 300;
        if (ok || !untilAccepted || Date.now() > deadline) break;
        await sleep(retryMs);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return t;
}

const accepted = (t: PostTally) => [...t.byStatus].filter(([s]) => s >= 200 && s < 300).reduce((n, [, c]) => n + c, 0);

async function fleetSummary(apiUrl: string, from: string): Promise<Record<string, unknown> & { total: number }> {
  const a = await request(`${apiUrl}/rockets/summary`, { from, timeoutMs: 30_000 });
  if (a.status !== 200) throw new Error(`GET /rockets/summary answered ${a.status}: ${a.body.slice(0, 200)}`);
  return JSON.parse(a.body) as Record<string, unknown> & { total: number };
}

/** Waits until the API's fleet holds at least `total` rockets; returns how long it took, or undefined past `timeoutMs`. */
async function untilFleetHolds(apiUrl: string, from: string, total: number, timeoutMs: number): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if ((await fleetSummary(apiUrl, from)).total >= total) return Date.now() - start;
    await sleep(250);
  }
  return undefined;
}

const MiB = 2 ** 20;

/** (a) A gap that never closes on one channel per partition: messages 2..N+1, no message 1. */
export const gapThatNeverCloses: Attack = {
  key: "a",
  title: "gap never closing, one channel per partition",
  async run(ctx) {
    const n = ctx.profile.gapMessages;
    const channels = channelsPerPartition(0xa11ce, ctx.partitions, 1).flat();
    const messages: RocketMessage[] = [];
    for (const channel of channels) for (let i = 2; i <= n + 1; i += 1) messages.push(speedUp(channel, i, 1));
    const started = Date.now();
    const t = await postAll(`${ctx.ingestUrl}/messages`, batches(messages, 500), ctx.from, { concurrency: 4 });
    const postedMs = Date.now() - started;
    await sleep(ctx.profile.holdMs);
    return [
      {
        name: "posted",
        ok: true,
        detail: `${messages.length} messages (${n} per channel, numbered 2..${n + 1}) in ${postedMs} ms: ${describe(t)}`,
      },
    ];
  },
};

/** (b) Channels that never launch: message 2 of each, no message 1. */
export const unlaunchedChannels: Attack = {
  key: "b",
  title: "never-launched channels",
  async run(ctx) {
    const n = ctx.profile.unlaunchedChannels;
    const channels = channelsPerPartition(0xb0b, ctx.partitions, Math.ceil(n / ctx.partitions)).flat().slice(0, n);
    const started = Date.now();
    const t = await postAll(`${ctx.ingestUrl}/messages`, batches(channels.map((c) => speedUp(c, 2, 1)), 500), ctx.from, { concurrency: 4 });
    const postedMs = Date.now() - started;
    await sleep(ctx.profile.holdMs);
    // They never launched: the API must not show any of them as a rocket.
    const sample = channels.filter((_, i) => i % Math.max(1, Math.floor(channels.length / 20)) === 0);
    const shown = (await Promise.all(sample.map((c) => request(`${ctx.apiUrl}/rockets/${c}`, { from: ctx.from })))).filter((a) => a.status !== 404);
    return [
      { name: "posted", ok: true, detail: `${channels.length} channels with only message 2, in ${postedMs} ms: ${describe(t)}` },
      { name: "not shown as rockets", ok: shown.length === 0, detail: `${shown.length} of ${sample.length} sampled channels answered other than 404` },
    ];
  },
};

/** (c) Connections that stall mid-body, and stalled 1 MB uploads. */
export const stalledBodies: Attack = {
  key: "c",
  title: "stalled bodies and 1 MB uploads",
  async run(ctx) {
    const { stalledConnections, stalledUploads, requestTimeoutMs } = ctx.profile;
    const url = new URL(ctx.ingestUrl);
    const conns: { socket: net.Socket; closedByServer: boolean }[] = [];
    let ending = false;
    let refused = 0;
    const upload = Buffer.alloc(MiB - 1, 0x20);
    const open = (contentLength: number, body: Buffer | string) =>
      new Promise<void>((resolve) => {
        const socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress: ctx.from });
        const conn = { socket, closedByServer: false };
        conns.push(conn);
        socket.on("connect", () => {
          const headers = Object.entries(requestHeaders({ "content-type": "application/json", "content-length": String(contentLength) }))
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join("");
          socket.write(`POST /messages HTTP/1.1\r\nhost: ${url.host}\r\n${headers}\r\n`);
          // Never the whole body: the request stalls here.
          socket.write(body);
          resolve();
        });
        socket.on("error", () => {
          refused += 1;
          resolve();
        });
        socket.on("close", () => {
          if (!ending) conn.closedByServer = true;
        });
        socket.resume();
      });
    const started = Date.now();
    for (let i = 0; i < stalledConnections; i += 1) await open(1000, '[{"metadata":{"channel":"');
    for (let i = 0; i < stalledUploads; i += 1) await open(MiB, upload);
    const opened = Date.now() - started;
    // Ingest must keep answering its health check meanwhile.
    let healthy = 0;
    let probes = 0;
    const until = started + ctx.profile.stallHoldMs;
    while (Date.now() < until) {
      probes += 1;
      try {
        if ((await request(`${ctx.ingestUrl}/healthz`, { timeoutMs: 2000 })).status === 200) healthy += 1;
      } catch {
        // counted as not healthy
      }
      await sleep(250);
    }
    const total = stalledConnections + stalledUploads;
    const cut = conns.filter((c) => c.closedByServer).length;
    ending = true;
    for (const c of conns) c.socket.destroy();
    const held = ctx.profile.stallHoldMs;
    return [
      { name: "opened", ok: true, detail: `${stalledConnections} stalled mid-body + ${stalledUploads} x 1 MB stalled uploads in ${opened} ms (${refused} refused)` },
      { name: "healthz answered", ok: healthy === probes, detail: `${healthy}/${probes}` },
      {
        name: "stalled requests cut by the server",
        // Only meaningful once the hold outlasts the request timeout (plus its once-a-second check).
        ok: held < requestTimeoutMs + 2000 || cut === total,
        detail: `${cut}/${total} closed by ingest within ${held} ms (HTTP_REQUEST_TIMEOUT_MS ${requestTimeoutMs})`,
      },
    ];
  },
};

/** (d) One address flooding POST /messages past the rate limit. */
export const requestFlood: Attack = {
  key: "d",
  title: "request flood from one address",
  async run(ctx) {
    const body = JSON.stringify(launched("d0d0d0d0-0000-4000-8000-000000000001", "Flood", "FLOOD", 500));
    const t = tally();
    // At least the hold, and at least twice the limit sent (a flood that never passes the limit tests nothing), within a cap.
    const holdUntil = Date.now() + ctx.profile.holdMs;
    const cap = holdUntil + 20_000;
    let sent = 0;
    const going = () => Date.now() < cap && (Date.now() < holdUntil || sent < 2 * ctx.profile.rateLimitMax);
    const worker = async () => {
      while (going()) {
        sent += 1;
        try {
          count(t, await request(`${ctx.ingestUrl}/messages`, { body, from: ctx.from, timeoutMs: 10_000 }));
        } catch {
          count(t, undefined);
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: ctx.profile.floodConcurrency }, worker));
    const seconds = (Date.now() - started) / 1000;
    const windows = Math.ceil(seconds / ctx.profile.rateLimitWindowSeconds) + 1;
    const ok = accepted(t);
    return [
      { name: "sent", ok: true, detail: `${sent} requests in ${seconds.toFixed(1)} s (${Math.round(sent / seconds)}/s): ${describe(t)}` },
      { name: "refused with 429 past the limit", ok: (t.byStatus.get(429) ?? 0) > 0, detail: `${t.byStatus.get(429) ?? 0} x 429` },
      {
        name: "accepted within the limit",
        ok: ok <= ctx.profile.rateLimitMax * windows,
        detail: `${ok} accepted, limit ${ctx.profile.rateLimitMax} per ${ctx.profile.rateLimitWindowSeconds} s`,
      },
    ];
  },
};

const longType = (i: number) => `T${String(i).padStart(8, "0")}-${"y".repeat(180)}`;

/** (e) The summary over many rockets of unique long types, asked for by many clients at once. */
export const summaryOverManyTypes: Attack = {
  key: "e",
  title: "summary: unique long types, parallel requests",
  async setup(ctx) {
    const n = ctx.profile.summaryRockets;
    const before = (await fleetSummary(ctx.apiUrl, ctx.from)).total;
    const channels = channelsPerPartition(0xe5e, ctx.partitions, Math.ceil(n / ctx.partitions)).flat().slice(0, n);
    const messages = channels.map((c, i) => launched(c, longType(i), "SUMMARY", 1000 + i));
    const started = Date.now();
    const deadline = started + ctx.profile.setupTimeoutMs;
    const t = await postAll(`${ctx.ingestUrl}/messages`, batches(messages, 250), ctx.from, { concurrency: 2, untilAccepted: true, deadline });
    const shown = await untilFleetHolds(ctx.apiUrl, ctx.from, before + n, Math.max(1000, deadline - Date.now()));
    if (shown === undefined) throw new Error(`setup: the API did not show ${n} new rockets within ${ctx.profile.setupTimeoutMs} ms (posts: ${describe(t)})`);
    return `${n} rockets with unique ${longType(0).length}-character types loaded in ${Date.now() - started} ms`;
  },
  async run(ctx) {
    const latencies: number[] = [];
    let largest = 0;
    let failures = 0;
    const until = Date.now() + ctx.profile.holdMs;
    const worker = async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        try {
          const a = await request(`${ctx.apiUrl}/rockets/summary`, { from: ctx.from, timeoutMs: 30_000 });
          if (a.status !== 200) failures += 1;
          largest = Math.max(largest, Buffer.byteLength(a.body));
        } catch {
          failures += 1;
        }
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: ctx.profile.summaryParallel }, worker));
    const s = await fleetSummary(ctx.apiUrl, ctx.from);
    const p99 = quantile(latencies, 0.99);
    return [
      {
        name: "summary answers",
        ok: failures === 0 && p99 <= 1000,
        detail: `${latencies.length} by ${ctx.profile.summaryParallel} at once: p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ${failures} failed`,
      },
      { name: "summary size bounded", ok: largest <= 16 * 1024, detail: `largest ${largest} bytes (bound 16 KiB), distinctTypes ${String(s["distinctTypes"])}` },
    ];
  },
};

/** (f) One client opening many event streams. */
export const manyEventStreams: Attack = {
  key: "f",
  title: "one client opening many SSE streams",
  async run(ctx) {
    const url = new URL(`${ctx.apiUrl}/rockets/stream`);
    const sockets: net.Socket[] = [];
    const statuses = new Map<number, number>();
    const open = (from: string) =>
      new Promise<number>((resolve) => {
        const s = net.connect({ host: url.hostname, port: Number(url.port), localAddress: from });
        let head = "";
        s.on("connect", () => {
          const headers = Object.entries(requestHeaders({ accept: "text/event-stream" }))
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join("");
          s.write(`GET ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\n${headers}\r\n`);
        });
        s.on("data", (chunk: Buffer) => {
          if (head.length > 100) return;
          head += chunk.toString();
          const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
          if (m) resolve(Number(m[1]));
        });
        s.on("error", () => resolve(0));
        s.on("close", () => resolve(0));
        sockets.push(s);
      });
    for (let i = 0; i < ctx.profile.sseStreams; i += 1) {
      const status = await open(ctx.from);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    // Another client still gets a stream.
    const legitStatus = await open("127.0.0.1");
    await sleep(ctx.profile.holdMs);
    for (const s of sockets) s.destroy();
    const held = statuses.get(200) ?? 0;
    const desc = [...statuses].map(([s, n]) => `${n}x${s}`).join(" ");
    return [
      { name: "streams one client holds", ok: held <= ctx.profile.sseMaxPerClient, detail: `${desc} (SSE_MAX_CLIENTS_PER_CLIENT ${ctx.profile.sseMaxPerClient})` },
      { name: "another client still served", ok: legitStatus === 200, detail: `answered ${legitStatus}` },
    ];
  },
};

/** (g) Speeds driven to the ceiling near 2^53, and prototype names as labels. */
export const precisionAndPrototypes: Attack = {
  key: "g",
  title: "speeds near 2^53, __proto__ labels",
  async run(ctx) {
    const [big, zero, five, ...protos] = channelsPerPartition(0x9, ctx.partitions, 1).flat().concat(channelsPerPartition(0x99, ctx.partitions, 1).flat());
    const messages: RocketMessage[] = [launched(big!, "Ceiling", "__proto__", MAX_SPEED)];
    // Each step adds MAX_SPEED: past 2^53 / 10^12 steps the speed saturates at Number.MAX_SAFE_INTEGER.
    const steps = Math.ceil(Number.MAX_SAFE_INTEGER / MAX_SPEED) + 5;
    for (let i = 2; i <= steps + 1; i += 1) messages.push(speedUp(big!, i, MAX_SPEED));
    messages.push(launched(zero!, "constructor", "toString", 500), message(zero!, 2, "RocketSpeedDecreased", { by: 500 }));
    messages.push(launched(five!, "hasOwnProperty", "constructor", 500));
    const labelled = protos.slice(0, 3);
    for (const c of labelled) messages.push(launched(c, "__proto__", "__proto__", 7));
    const t = await postAll(`${ctx.ingestUrl}/messages`, batches(messages, 500), ctx.from, {
      concurrency: 1,
      untilAccepted: true,
      deadline: Date.now() + ctx.profile.setupTimeoutMs,
    });
    // Every rocket of this attack shown at its last message.
    const deadline = Date.now() + ctx.profile.setupTimeoutMs;
    let bigSpeed: unknown;
    for (;;) {
      const a = await request(`${ctx.apiUrl}/rockets/${big}`, { from: ctx.from });
      const r = a.status === 200 ? (JSON.parse(a.body) as Record<string, unknown>) : undefined;
      bigSpeed = r?.["speed"];
      if (r?.["lastMessageNumber"] === steps + 1 || Date.now() > deadline) break;
      await sleep(200);
    }
    await sleep(ctx.profile.holdMs);
    return [
      { name: "posted", ok: accepted(t) === Math.ceil(messages.length / 500), detail: `${messages.length} messages: ${describe(t)}` },
      { name: "speed saturates exactly", ok: bigSpeed === Number.MAX_SAFE_INTEGER, detail: `speed ${String(bigSpeed)} after ${steps} increases of ${MAX_SPEED}` },
    ];
  },
  async settled(ctx) {
    const s = await fleetSummary(ctx.apiUrl, ctx.from);
    // Every rocket listed, their speeds summed exactly, against the summary's own sum.
    let sum = 0n;
    let listed = 0;
    let cursor: string | null = null;
    do {
      const q: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
      const a = await request(`${ctx.apiUrl}/rockets?limit=1000${q}`, { from: ctx.from, timeoutMs: 30_000 });
      const page = JSON.parse(a.body) as { rockets: { speed: number }[]; nextCursor: string | null };
      for (const r of page.rockets) sum += BigInt(r.speed);
      listed += page.rockets.length;
      cursor = page.nextCursor;
    } while (cursor !== null);
    const byType = s["byType"] as Record<string, number>;
    const byMission = s["byMission"] as Record<string, number>;
    const protoType = Object.prototype.hasOwnProperty.call(byType, "__proto__") ? byType["__proto__"] : undefined;
    const protoMission = Object.prototype.hasOwnProperty.call(byMission, "__proto__") ? byMission["__proto__"] : undefined;
    return [
      {
        name: "exact sum and mean",
        ok: listed === s.total && String(s["totalSpeed"]) === sum.toString() && s["averageSpeed"] === exactMean(sum, listed),
        detail: `listed ${listed}, summary total ${s.total}; sum ${sum} vs totalSpeed ${String(s["totalSpeed"])}; average ${String(s["averageSpeed"])} vs ${exactMean(sum, Math.max(1, listed))}`,
      },
      {
        name: "__proto__ counted",
        ok: protoType === 3 && protoMission === 4,
        detail: `byType.__proto__ ${String(protoType)} (expected 3), byMission.__proto__ ${String(protoMission)} (expected 4)`,
      },
    ];
  },
};

/** In the order they run: the ones that leave lasting damage (a gap that never closes, unlaunched channels) last. */
export const ATTACKS: readonly Attack[] = [
  manyEventStreams,
  requestFlood,
  stalledBodies,
  precisionAndPrototypes,
  summaryOverManyTypes,
  unlaunchedChannels,
  gapThatNeverCloses,
];
