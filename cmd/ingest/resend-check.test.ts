// ResendCheck's bookkeeping over an in-memory StoredNumbers: when it reads a
// channel's applied number again, how many channels it keeps, and that it
// scans for a stored copy only for a number already applied. The NATS side
// is tested in late-resend.test.ts.

import { describe, expect, it } from "vitest";
import { ResendCheck, type StoredNumbers, type StoredUnder } from "./resend-check.js";

class MemoryNumbers implements StoredNumbers {
  readonly through = new Map<string, number>();
  readonly stored = new Map<string, StoredUnder>();
  reads = 0;
  scans = 0;
  dropped: number[] = [];
  async appliedThrough(channel: string) {
    this.reads += 1;
    await Promise.resolve();
    return this.through.get(channel) ?? 0;
  }
  async firstStored(channel: string, n: number, beforeSeq: number) {
    this.scans += 1;
    const s = this.stored.get(`${channel}:${n}`);
    return s !== undefined && s.seq < beforeSeq ? s : undefined;
  }
  async dropCopy(seq: number) {
    this.dropped.push(seq);
  }
}

function setup(maxChannels = 100) {
  let now = 0;
  const numbers = new MemoryNumbers();
  const check = new ResendCheck({ maxChannels, now: () => now });
  check.attach({ numbers, duplicateWindowMs: 1000 });
  return { numbers, check, advance: (ms: number) => (now += ms) };
}

describe("ResendCheck", () => {
  it("refuses to judge before it is attached", async () => {
    await expect(new ResendCheck().appliedThrough("a")).rejects.toThrow(/not connected/);
  });

  it("reads a channel's applied number once per half window", async () => {
    const { numbers, check, advance } = setup();
    numbers.through.set("a", 3);
    expect(await check.appliedThrough("a")).toBe(3);
    numbers.through.set("a", 9);
    advance(499);
    expect(await check.appliedThrough("a")).toBe(3);
    advance(1);
    expect(await check.appliedThrough("a")).toBe(9);
    expect(numbers.reads).toBe(2);
  });

  it("finds what was stored first under a number, below the new copy's sequence", async () => {
    const { numbers, check } = setup();
    numbers.stored.set("a:2", { seq: 5, message: { x: 1 } });
    expect(await check.earlierCopy("a", 2, 21)).toEqual({ kind: "stored", stored: { seq: 5, message: { x: 1 } } });
    expect(await check.earlierCopy("a", 2, 5)).toEqual({ kind: "expired" });
    expect(await check.earlierCopy("a", 1, 22)).toEqual({ kind: "expired" });
    await check.dropCopy(21);
    expect(numbers.dropped).toEqual([21]);
  });

  it("shares one read among concurrent messages of a channel", async () => {
    const { numbers, check } = setup();
    await Promise.all([1, 2, 3, 4].map(() => check.appliedThrough("b")));
    expect(numbers.reads).toBe(1);
  });

  it("remembers at most maxChannels, forgetting the least recently used", async () => {
    const { numbers, check } = setup(2);
    await check.appliedThrough("a");
    await check.appliedThrough("b");
    await check.appliedThrough("a"); // a used again: b is now the oldest
    await check.appliedThrough("c");
    expect(check.size).toBe(2);
    expect(numbers.reads).toBe(3);
    await check.appliedThrough("a");
    expect(numbers.reads).toBe(3);
    await check.appliedThrough("b");
    expect(numbers.reads).toBe(4);
  });
});
