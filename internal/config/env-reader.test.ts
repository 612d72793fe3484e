import { describe, expect, it } from "vitest";
import { ConfigError, EnvReader } from "./env-reader.js";
import { readNats, readTopology } from "./common.js";

describe("EnvReader", () => {
  it("lists every problem in one error instead of stopping at the first", () => {
    const r = new EnvReader({ PORT: "eighty", PARTITIONS: "0", LOG_LEVEL: "loud", NATS_USER: "u" });
    r.int("PORT", 8080, { min: 0, max: 65535 });
    readTopology(r);
    r.oneOf("LOG_LEVEL", "info", ["info", "debug"]);
    readNats(r, "test");
    let caught: unknown;
    try {
      r.done();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const { problems } = caught as ConfigError;
    expect(problems).toHaveLength(4);
    expect(problems.join("\n")).toMatch(/PORT must be an integer/);
    expect(problems.join("\n")).toMatch(/PARTITIONS must be an integer from 1/);
    expect(problems.join("\n")).toMatch(/LOG_LEVEL must be one of info, debug/);
    expect(problems.join("\n")).toMatch(/NATS_USER and NATS_PASSWORD go together/);
  });

  it("uses defaults for unset or blank variables and parses lists", () => {
    const r = new EnvReader({ PORT: " ", NATS_URL: "nats://a:4222, nats://b:4222" });
    expect(r.int("PORT", 8088, { min: 0, max: 65535 })).toBe(8088);
    expect(readNats(r, "svc").servers).toEqual(["nats://a:4222", "nats://b:4222"]);
    // Unset: whatever the deployment has (provisioning adopts it), else the defaults.
    expect(readTopology(r)).toEqual({
      partitions: undefined,
      replicas: undefined,
      duplicateWindowSeconds: undefined,
      maxAgeSeconds: undefined,
      maxBytes: undefined,
      compression: undefined,
    });
    expect(() => r.done()).not.toThrow();
  });

  it("refuses a duplicate window shorter than two minutes", () => {
    const r = new EnvReader({ DUPLICATE_WINDOW_SECONDS: "60" });
    readTopology(r);
    expect(() => r.done()).toThrow(/DUPLICATE_WINDOW_SECONDS/);
  });

  it("reads retention as durations and sizes with units, and lists what it cannot read", () => {
    const r = new EnvReader({ STREAM_MAX_AGE: "7d", STREAM_MAX_BYTES: "6GiB", STREAM_COMPRESSION: "none", STREAM_REPLICAS: "3" });
    expect(readTopology(r)).toMatchObject({ maxAgeSeconds: 7 * 86_400, maxBytes: 6 * 2 ** 30, compression: "none", replicas: 3 });
    expect(new EnvReader({ X: "90" }).duration("X", undefined, { min: 60, max: 100 })).toBe(90);
    expect(new EnvReader({ X: "2m" }).duration("X", undefined, { min: 60, max: 1000 })).toBe(120);
    expect(new EnvReader({ X: "500MB" }).bytes("X", undefined, { min: 1, max: 2 ** 40 })).toBe(500e6);
    expect(new EnvReader({ X: "1048576" }).bytes("X", undefined, { min: 1, max: 2 ** 40 })).toBe(2 ** 20);
    const bad = new EnvReader({ STREAM_MAX_AGE: "7 weeks", STREAM_MAX_BYTES: "lots", STREAM_COMPRESSION: "zstd" });
    readTopology(bad);
    expect(() => bad.done()).toThrow(/STREAM_MAX_AGE must be a duration/);
    expect(() => bad.done()).toThrow(/STREAM_MAX_BYTES must be a size/);
    expect(() => bad.done()).toThrow(/STREAM_COMPRESSION must be one of s2, none/);
  });

  it("refuses two authentication methods at once", () => {
    const r = new EnvReader({ NATS_TOKEN: "t", NATS_CREDS: "/x.creds" });
    readNats(r, "svc");
    expect(() => r.done()).toThrow(/choose one NATS authentication/);
  });
});
