// ResendCheck's bookkeeping over an in-memory StoredNumbers: when it reads a
// channel's applied number again, how many channels it keeps, that it reads
// stored copies only for a number already applied, remembers them, and
// bounds how many reads run at once. The NATS side is tested in
// late-resend.test.ts.

import { describe, expect, it } from "vitest";
import type { RocketMessage } from "../../internal/domain/message.js";
import { ResendCheck, ResendUncheckedError, type StoredNumbers, type StoredUnder } from "./resend-check.js";

function msg(channel: string, messageNumber: number): RocketMessage {
  return {
    metadata: { channel, messageNumber, messageTime: "2025-04-02T09:21:50Z", messageType: "RocketSpeedIncreased" },
    message: { by: messageNumber },
  } as RocketMessage;
}

class MemoryNumbers implements StoredNumbers {
  readonly through = new Map<string, number>();
  readonly stored = new Map<string, StoredUnder>();
  reads = 0;
  scans = 0;
  /** While set, scans wait for it. */
  gate: Promise<void> | undefined;
  async appliedThrough(channel: string) {
    this.reads += 1;
    await Promise.resolve();
    return this.through.get(channel) ?? 0;
  }
  async firstStored(channel: string, n: number) {
    this.scans += 1;
    await this.gate;
    return this.stored.get(`${channel}:${n}`);
  }
}

function setup(maxChannels = 100, maxScans = 4) {
  let now = 0;
  const numbers = new MemoryNumbers();
  const check = new ResendCheck({ maxChannels, maxScans, now: () => now });
  check.attach({ numbers, duplicateWindowMs: 1000 });
  return { numbers, check, advance: (ms: number) => (now += ms) };
}

describe("ResendCheck", () => {
  it("cannot say before it is attached", async () => {
    await expect(new ResendCheck().priorCopy(msg("a", 1))).rejects.toBeInstanceOf(ResendUncheckedError);
  });

  it("reads stored copies only for an applied number, and says when the stream no longer holds one", async () => {
    const { numbers, check } = setup();
    numbers.through.set("a", 3);
    numbers.stored.set("a:2", { seq: 5, message: msg("a", 2) });
    expect(await check.priorCopy(msg("a", 4))).toBeUndefined();
    expect(numbers.scans).toBe(0);
    expect(await check.priorCopy(msg("a", 2))).toEqual({ kind: "stored", stored: { seq: 5, message: msg("a", 2) } });
    expect(await check.priorCopy(msg("a", 1))).toEqual({ kind: "expired" });
    expect(numbers.scans).toBe(2);
    // A copy found is remembered for the client's next retry.
    await check.priorCopy(msg("a", 2));
    expect(numbers.scans).toBe(2);
  });

  it("reads a channel's applied number once per half window", async () => {
    const { numbers, check, advance } = setup();
    numbers.through.set("a", 3);
    expect(await check.priorCopy(msg("a", 5))).toBeUndefined();
    numbers.through.set("a", 9);
    advance(499);
    expect(await check.priorCopy(msg("a", 5))).toBeUndefined();
    advance(1);
    expect(await check.priorCopy(msg("a", 5))).toEqual({ kind: "expired" });
    expect(numbers.reads).toBe(2);
  });

  it("shares one read among concurrent messages of a channel", async () => {
    const { numbers, check } = setup();
    await Promise.all([1, 2, 3, 4].map((n) => check.priorCopy(msg("b", n))));
    expect(numbers.reads).toBe(1);
  });

  it("runs at most maxScans reads of stored copies at once and says it is busy past that", async () => {
    const { numbers, check } = setup(100, 2);
    numbers.through.set("a", 10);
    let open!: () => void;
    numbers.gate = new Promise((r) => (open = r));
    const running = [check.priorCopy(msg("a", 1)), check.priorCopy(msg("a", 2))];
    await new Promise((r) => setTimeout(r, 0));
    await expect(check.priorCopy(msg("a", 3))).rejects.toMatchObject({ reason: "busy" });
    open();
    await Promise.all(running);
    expect(await check.priorCopy(msg("a", 3))).toEqual({ kind: "expired" });
  });

  it("remembers at most maxChannels, forgetting the least recently used", async () => {
    const { numbers, check } = setup(2);
    await check.priorCopy(msg("a", 1));
    await check.priorCopy(msg("b", 1));
    await check.priorCopy(msg("a", 2)); // a used again: b is now the oldest
    await check.priorCopy(msg("c", 1));
    expect(check.size).toBe(2);
    expect(numbers.reads).toBe(3);
    await check.priorCopy(msg("a", 3));
    expect(numbers.reads).toBe(3);
    await check.priorCopy(msg("b", 2));
    expect(numbers.reads).toBe(4);
  });

  it("says NATS could not answer when a read fails", async () => {
    const { numbers, check } = setup();
    numbers.appliedThrough = () => Promise.reject(new Error("no responders"));
    await expect(check.priorCopy(msg("a", 1))).rejects.toMatchObject({ reason: "unavailable" });
  });
});
