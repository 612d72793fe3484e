// The history answers over an in-memory events stream: pages of stored
// messages with what each did, and states at a message or a time, folded
// with the domain's sequencing; and explicit refusals where the stream no
// longer holds what an answer needs.

import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { foldHistory, HistoryTooLongError, type StoredMessage } from "../../internal/domain/history.js";
import type { RocketMessage } from "../../internal/domain/message.js";
import { apply, type Rocket } from "../../internal/domain/rocket.js";
import { Rng, rocketMessages } from "../../internal/testing/rocket-traffic.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import { rocketViewOf } from "../../internal/view/rocket-view.js";
import { MemoryHistory, testApp } from "./app.fixture.js";

const CHANNEL = "0a1b2c3d-0000-4000-8000-000000000042";
const messages = rocketMessages(CHANNEL, 12, new Rng(7));

/** Arrival order: reordered, with duplicates, and 10 and 12 received while 11 never was. */
const ARRIVALS = [2, 1, 3, 3, 5, 4, 6, 7, 9, 8, 2, 10, 12];

const at = (seq: number) => `2026-11-24T09:00:${String(seq).padStart(2, "0")}.000000001Z`;

function storedOf(numbers: number[]): StoredMessage[] {
  return numbers.map((n, i) => ({ seq: 100 + i, receivedAt: at(i), message: messages[n - 1]! }));
}

const inOrder = (n: number): Rocket => messages.slice(0, n).reduce<Rocket | null>((r, m) => apply(r, m), null)!;

interface Setup {
  app: FastifyInstance;
  history: MemoryHistory;
  view: FleetView;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** An app whose stream holds `stored` for CHANNEL and whose view holds the rocket the sequencer made of all of it. */
async function setup(stored: StoredMessage[], viewFrom: RocketMessage[] = stored.map((s) => s.message)): Promise<Setup> {
  const history = new MemoryHistory();
  history.channels.set(CHANNEL, { messages: stored, rejected: 1, heldSince: stored[0]?.receivedAt ?? null });
  const view = new FleetView();
  view.beginSync();
  const state = foldHistory(viewFrom.map((message, i) => ({ seq: i + 1, receivedAt: at(i), message })), 0).state;
  const rocket = rocketViewOf(CHANNEL, state);
  if (rocket) view.put(CHANNEL, rocket, 1);
  view.endSync();
  const { app } = await testApp(view, {}, history);
  apps.push(app);
  return { app, history, view };
}

interface HistoryBody {
  complete: boolean;
  missing: { from: number; to: number }[];
  waitingFor: { from: number; to: number }[];
  lastApplied: number;
  pendingMessages: number;
  rejected: number;
  total: number;
  heldSince: string | null;
  events: { seq: number; messageNumber: number; outcome: string | null; speedAfter: number | null; receivedAt: string; messageType: string }[];
  nextCursor: string | null;
}

async function historyOf(app: FastifyInstance, query = ""): Promise<HistoryBody> {
  const res = await app.inject(`/rockets/${CHANNEL}/events${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as HistoryBody;
}

describe("GET /rockets/:channel/events", () => {
  it("lists every stored message in stream order with what it did, its speed once applied, and the gap", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    const body = await historyOf(app);
    expect(body).toMatchObject({ complete: true, missing: [], lastApplied: 10, pendingMessages: 1, rejected: 1, total: ARRIVALS.length, nextCursor: null });
    expect(body.waitingFor).toEqual([{ from: 11, to: 11 }]);
    expect(body.events.map((e) => [e.seq, e.messageNumber, e.outcome])).toEqual([
      [100, 2, "buffered"],
      [101, 1, "applied"],
      [102, 3, "applied"],
      [103, 3, "duplicate"],
      [104, 5, "buffered"],
      [105, 4, "applied"],
      [106, 6, "applied"],
      [107, 7, "applied"],
      [108, 9, "buffered"],
      [109, 8, "applied"],
      [110, 2, "duplicate"],
      [111, 10, "applied"],
      [112, 12, "buffered"],
    ]);
    for (const e of body.events) expect(e.speedAfter, `message ${e.messageNumber}`).toBe(e.messageNumber <= 10 ? inOrder(e.messageNumber).speed : null);
    expect(body.events[0]!.receivedAt).toBe(at(0));
  });

  it("pages through either order with a cursor, every message exactly once, and refuses a cursor made for the other order", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    for (const order of ["stream", "messageNumber"] as const) {
      const seen: [number, number][] = [];
      const query = `?order=${order}&limit=4`;
      let cursor: string | null = null;
      for (let page = 0; page < 10; page += 1) {
        const body = await historyOf(app, cursor === null ? query : `${query}&cursor=${cursor}`);
        seen.push(...body.events.map((e): [number, number] => [e.messageNumber, e.seq]));
        cursor = body.nextCursor;
        if (cursor === null) break;
      }
      const expected = ARRIVALS.map((n, i): [number, number] => [n, 100 + i]);
      if (order === "messageNumber") expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      expect(seen, order).toEqual(expected);
    }
    const { nextCursor } = await historyOf(app, "?order=stream&limit=1");
    const res = await app.inject(`/rockets/${CHANNEL}/events?order=messageNumber&cursor=${nextCursor}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ errors: [{ path: "cursor" }] });
  });

  it("says the history is incomplete when the stream lost applied messages, and gives no outcome or speed", async () => {
    // Retention removed 1-3; the view knows the rocket applied through 10.
    const { app } = await setup(storedOf(ARRIVALS.filter((n) => n > 3)), storedOf(ARRIVALS).map((s) => s.message));
    const body = await historyOf(app);
    expect(body).toMatchObject({ complete: false, missing: [{ from: 1, to: 3 }], lastApplied: 10, pendingMessages: 1 });
    expect(body.waitingFor).toEqual([{ from: 11, to: 11 }]);
    expect(new Set(body.events.map((e) => e.outcome))).toEqual(new Set([null]));
    expect(new Set(body.events.map((e) => e.speedAfter))).toEqual(new Set([null]));
  });

  it("answers 404 for a channel the stream never held and the view does not know, 400 for a bad channel", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    expect((await app.inject("/rockets/unknown/events")).statusCode).toBe(404);
    expect((await app.inject("/rockets/a.b/events")).statusCode).toBe(400);
    expect((await app.inject(`/rockets/${CHANNEL}/events?limit=0`)).statusCode).toBe(400);
  });

  it("answers 503 with Retry-After when the stream cannot be read, and 422 when the history is too long", async () => {
    const { app, history } = await setup(storedOf(ARRIVALS));
    history.failure = new Error("no responders");
    const down = await app.inject(`/rockets/${CHANNEL}/events`);
    expect(down.statusCode).toBe(503);
    expect(down.headers["retry-after"]).toBe("1");
    expect(down.headers["content-type"]).toContain("application/problem+json");
    history.failure = new HistoryTooLongError(CHANNEL, 200_000, 100_000);
    const long = await app.inject(`/rockets/${CHANNEL}?at=3`);
    expect(long.statusCode).toBe(422);
    expect(long.json()).toMatchObject({ type: "urn:rockets:problem:history-too-long" });
  });
});

describe("GET /rockets/:channel?at= and ?asOf=", () => {
  it("answers the rocket right after message n, messages 1..n applied in number order", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    for (const n of [1, 4, 10]) {
      const res = await app.inject(`/rockets/${CHANNEL}?at=${n}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ ...inOrder(n), pendingMessages: 0 });
    }
    // The live answer is unchanged by the feature.
    expect((await app.inject(`/rockets/${CHANNEL}`)).json()).toMatchObject({ lastMessageNumber: 10, pendingMessages: 1 });
  });

  it("answers the state the sequencer held once it had what the stream received by a time, gap included", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    // By the 5th arrival (2,1,3,3,5): 1-3 applied, 5 waiting for 4. Same instant in another offset.
    for (const asOf of ["2026-11-24T09:00:04.000000001Z", "2026-11-24T11:00:04.000000001+02:00"]) {
      const res = await app.inject(`/rockets/${CHANNEL}?asOf=${encodeURIComponent(asOf)}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ ...inOrder(3), pendingMessages: 1 });
    }
    // Before anything was received the rocket had not launched.
    const before = await app.inject(`/rockets/${CHANNEL}?asOf=2026-11-24T08:00:00Z`);
    expect(before.statusCode).toBe(404);
    // Only 2 had arrived: no launch yet either.
    expect((await app.inject(`/rockets/${CHANNEL}?asOf=2026-11-24T09:00:00.5Z`)).statusCode).toBe(404);
  });

  it("refuses a message never received with the missing numbers", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    const res = await app.inject(`/rockets/${CHANNEL}?at=12`);
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ type: "urn:rockets:problem:not-received", missing: [{ from: 11, to: 11 }] });
  });

  it("answers 410 naming the lost numbers when retention removed what the state depends on, and answers what it can", async () => {
    const stored = storedOf(ARRIVALS).filter((s) => s.message.metadata.messageNumber !== 4);
    const { app } = await setup(stored, storedOf(ARRIVALS).map((s) => s.message));
    for (const query of ["at=7", `asOf=${at(12)}`]) {
      const res = await app.inject(`/rockets/${CHANNEL}?${query}`);
      expect(res.statusCode, query).toBe(410);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ type: "urn:rockets:problem:history-truncated", missing: [{ from: 4, to: 4 }], heldSince: at(0) });
    }
    expect((await app.inject(`/rockets/${CHANNEL}?at=3`)).json()).toEqual({ ...inOrder(3), pendingMessages: 0 });
  });

  it("names every bad parameter: both given, a bad time, a bad number, an unknown one", async () => {
    const { app } = await setup(storedOf(ARRIVALS));
    const cases: [string, string[]][] = [
      [`at=2&asOf=${at(3)}`, ["asOf"]],
      ["asOf=yesterday", ["asOf"]],
      ["at=0", ["at"]],
      ["at=two", ["at"]],
      ["when=now", ["when"]],
    ];
    for (const [query, paths] of cases) {
      const res = await app.inject(`/rockets/${CHANNEL}?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect((res.json() as { errors: { path: string }[] }).errors.map((e) => e.path), query).toEqual(paths);
    }
  });
});
