import { describe, expect, it } from "vitest";
import { Limiter } from "./limiter.js";

describe("Limiter", () => {
  it("runs at most `limit` tasks at once, then the urgent waiters before the others, each in arrival order", async () => {
    const limiter = new Limiter(1);
    const order: string[] = [];
    let release!: () => void;
    const first = limiter.run(() => new Promise<void>((r) => (release = r)));
    const task = (name: string) => async () => {
      order.push(name);
    };
    const waiting = [
      limiter.run(task("plain-1")),
      limiter.run(task("urgent-1"), true),
      limiter.run(task("plain-2")),
      limiter.run(task("urgent-2"), true),
    ];
    expect(limiter.running).toBe(1);
    expect(limiter.queued).toBe(4);
    release();
    await Promise.all([first, ...waiting]);
    expect(order).toEqual(["urgent-1", "urgent-2", "plain-1", "plain-2"]);
    expect(limiter.running).toBe(0);
  });
});
