import { describe, expect, it } from "vitest";
import { DEFAULTS, parseDuration, parseFlags } from "./flags.js";

const URL = "http://localhost:8088/messages";

function ok(argv: string[]) {
  const r = parseFlags(argv);
  if (!r.ok) throw new Error(r.problems.join("; "));
  return r.options;
}

function problems(argv: string[]) {
  const r = parseFlags(argv);
  if (r.ok) throw new Error("expected problems");
  return r.problems;
}

describe("parseDuration", () => {
  it.each([
    ["0", 0],
    ["500ms", 500],
    ["2s", 2000],
    ["1.5s", 1500],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["250us", 0.25],
    ["1000000ns", 1],
  ])("reads the Go duration %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "5", "ms", "1x", "-1s", "1s junk", "s1"])("rejects %j", (text) => expect(parseDuration(text)).toBeUndefined());
});

describe("parseFlags", () => {
  it("uses the test program's defaults", () => {
    expect(ok([URL])).toEqual({ ...DEFAULTS, url: URL, verifyUrl: undefined });
    expect(DEFAULTS).toMatchObject({ messageDelayMs: 0, concurrency: 3, maxMessages: 100_000, seed: 444, logLevel: "info" });
  });

  it("takes the test program's flags as --name=value and --name value, before or after the URL", () => {
    const o = ok(["--message-delay=500ms", URL, "--concurrency-level", "1", "--max-messages=10", "--seed", "7", "--log-level=debug"]);
    expect(o).toMatchObject({ url: URL, messageDelayMs: 500, concurrency: 1, maxMessages: 10, seed: 7, logLevel: "debug" });
  });

  it("takes our additions", () => {
    const o = ok([URL, "--rockets=300", "--duplicate-rate=0.05", "--reorder-window", "200", "--keep-alive", "--verify", "http://localhost:8080/", "--verify-timeout=30s"]);
    expect(o).toMatchObject({ rockets: 300, duplicateRate: 0.05, reorderWindow: 200, keepAlive: true, verifyUrl: "http://localhost:8080", verifyTimeoutMs: 30_000 });
  });

  it("takes a key by --key, or in the target URL's userinfo as the test program does", () => {
    expect(ok([URL, "--key", "k-1_x"]).key).toBe("k-1_x");
    expect(ok([URL]).key).toBeUndefined();
    const withKey = "http://rockets:k-1_x@localhost:8088/messages";
    expect(ok([withKey, "--verify", "http://console:k2@localhost:8080"])).toMatchObject({ url: withKey, verifyUrl: "http://console:k2@localhost:8080" });
  });

  it("reads a boolean given explicitly", () => {
    expect(ok([URL, "--keep-alive=false"]).keepAlive).toBe(false);
  });

  it("accepts a negative seed", () => {
    expect(ok([URL, "--seed=-5"]).seed).toBe(-5);
  });

  it("reports every problem at once", () => {
    const found = problems(["--concurrency-level=0", "--message-delay=soon", "--duplicate-rate=2", "--log-level=loud", "--nope", "--seed=1.5"]);
    expect(found).toEqual([
      expect.stringContaining("--concurrency-level"),
      expect.stringContaining("--message-delay"),
      expect.stringContaining("--duplicate-rate"),
      expect.stringContaining("--log-level"),
      "unknown flag --nope",
      expect.stringContaining("--seed"),
      expect.stringContaining("target URL is required"),
    ]);
  });

  it("rejects a target that is not an http URL, and a flag with no value", () => {
    expect(problems(["localhost:8088"])).toEqual([expect.stringContaining("http(s) URL")]);
    expect(problems([URL, "--verify"])).toEqual(["--verify: needs a value"]);
    expect(problems([URL, "http://other"])).toEqual([expect.stringContaining("one target URL")]);
  });

  it("answers --help with the usage and no problems", () => {
    expect(parseFlags(["--help"])).toEqual({ ok: false, problems: [], help: true });
  });
});
