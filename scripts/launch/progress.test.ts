import { describe, expect, it } from "vitest";
import { ProgressBar, summaryLine } from "./progress.js";
import type { SendStats } from "./sender.js";

function stream(isTTY: boolean) {
  const written: string[] = [];
  return { written, isTTY, write: (chunk: string) => (written.push(chunk), true) };
}

const stats = (): SendStats => ({ sent: 0, retries: 0, failures: new Map(), startedAt: performance.now(), lastPostAt: 0 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ProgressBar", () => {
  it("writes a progress line every few seconds where there is no terminal, so a long run is never silent", async () => {
    const out = stream(false);
    const s = stats();
    const bar = new ProgressBar(1000, s, out, 50);
    bar.start();
    s.sent = 250;
    s.retries = 2;
    await sleep(130);
    bar.stop();
    expect(out.written.length).toBeGreaterThanOrEqual(2);
    expect(out.written[0]).toMatch(/^\S+ INFO {2}sent 250\/1000 \(25%\), \d+ msg\/s, 2 retries\n$/);
    // No carriage returns or bars in a log file; nothing more once stopped.
    expect(out.written.join("")).not.toMatch(/[\r#]/);
    const count = out.written.length;
    await sleep(80);
    expect(out.written).toHaveLength(count);
  });

  it("redraws one bar in place on a terminal and ends it with a newline", async () => {
    const out = stream(true);
    const s = stats();
    const bar = new ProgressBar(4, s, out, 50);
    bar.start();
    s.sent = 4;
    await sleep(250);
    bar.stop();
    expect(out.written.every((w) => w.startsWith("\r[") || w === "\n")).toBe(true);
    expect(out.written.at(-2)).toMatch(/^\r\[#{30}\] 100% 4\/4 /);
    expect(out.written.at(-1)).toBe("\n");
  });
});

describe("summaryLine", () => {
  it("says the rate, the retries by cause and the verification", () => {
    expect(
      summaryLine({
        posts: 10,
        messages: 9,
        duplicates: 1,
        sendMs: 2000,
        retries: 3,
        failures: new Map([["503", 3]]),
        verify: { ok: false, settleMs: 60_000, matched: 1, rockets: 2 },
      }),
    ).toBe("10 messages (9 distinct, 1 duplicates) in 2.00 s, 5 messages/s, 3 retries (503 x3), NOT settled after 60.0 s (1/2 rockets exact)");
  });
});
