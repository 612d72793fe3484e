import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FetchOutage } from "./fetch-outage.js";

function setup(persistentAfterMs = 30_000) {
  const lines: Array<{ level: number; msg: string; failures?: number; seconds?: number; err?: unknown }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  let now = 0;
  const outage = new FetchOutage(pino({ level: "debug" }, sink), 3, persistentAfterMs, () => now);
  return { outage, lines, advance: (ms: number) => (now += ms) };
}

const INFO = 30;
const WARN = 40;
const heartbeats = new Error("heartbeats missed");

describe("FetchOutage", () => {
  it("keeps a failure that recovers by itself below INFO, and says how many failed and for how long", () => {
    const { outage, lines, advance } = setup();
    outage.failed(heartbeats);
    advance(1000);
    outage.failed(heartbeats);
    advance(1000);
    outage.succeeded();
    expect(lines.every((l) => l.level < INFO)).toBe(true);
    expect(lines.at(-1)).toMatchObject({ msg: "fetching from the partition recovered", failures: 2, seconds: 2 });
  });

  it("warns once when the outage lasts, not once per retry, and says at INFO when it ends", () => {
    const { outage, lines, advance } = setup(30_000);
    for (let i = 0; i < 40; i++) {
      outage.failed(heartbeats);
      advance(1000);
    }
    const warnings = lines.filter((l) => l.level === WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: "fetching from the partition keeps failing; retrying", failures: 31, seconds: 30 });
    outage.succeeded();
    expect(lines.at(-1)).toMatchObject({ level: INFO, msg: "fetching from the partition recovered", failures: 40, seconds: 40 });
  });

  it("starts counting afresh after a recovery", () => {
    const { outage, lines, advance } = setup(10_000);
    outage.failed(heartbeats);
    advance(20_000);
    outage.succeeded();
    outage.failed(heartbeats);
    expect(lines.filter((l) => l.level === WARN)).toHaveLength(0);
    expect(lines.at(-1)).toMatchObject({ failures: 1, seconds: 0 });
  });

  it("says nothing when a pull succeeds outside an outage", () => {
    const { outage, lines } = setup();
    outage.succeeded();
    expect(lines).toEqual([]);
  });
});
