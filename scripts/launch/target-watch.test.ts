import { describe, expect, it } from "vitest";
import type { Log } from "./log.js";
import { TargetWatch } from "./target-watch.js";

function setup() {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  const log: Log = { debug: at("DEBUG"), info: at("INFO"), warn: at("WARN"), error: at("ERROR") };
  let now = 0;
  const watch = new TargetWatch("http://localhost:8088/messages", log, 500, 10_000, () => now);
  return { watch, lines, advance: (ms: number) => (now += ms) };
}

describe("TargetWatch", () => {
  it("warns at the first refused connection, naming the URL and what to check, then every 10 s while it lasts", () => {
    const { watch, lines, advance } = setup();
    watch.failed("ECONNREFUSED");
    expect(lines).toEqual([
      "WARN cannot reach http://localhost:8088/messages (ECONNREFUSED, connection refused: nothing listens there): " +
        "is the system running there (npm start)? Retrying every 500 ms until it answers; Ctrl-C stops.",
    ]);
    for (let i = 0; i < 39; i++) {
      advance(500);
      watch.failed("ECONNREFUSED");
    }
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe("WARN no message accepted by http://localhost:8088/messages for 10 s (ECONNREFUSED x21); still retrying");
    watch.succeeded();
    expect(lines.at(-1)).toBe("INFO http://localhost:8088/messages accepts messages again after 20 s");
  });

  it("lets short bursts of 503s pass quietly, and warns about ones that last", () => {
    const { watch, lines, advance } = setup();
    watch.failed("503");
    advance(2000);
    watch.succeeded();
    expect(lines).toEqual([]);
    for (let i = 0; i <= 20; i++) {
      watch.failed(i % 2 ? "503" : "timeout");
      advance(500);
    }
    expect(lines).toEqual(["WARN no message accepted by http://localhost:8088/messages for 10 s (timeout x11, 503 x10); still retrying"]);
  });
});
