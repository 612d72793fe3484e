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
    expect(readTopology(r)).toEqual({ partitions: undefined, replicas: 1, duplicateWindowSeconds: 120 });
    expect(() => r.done()).not.toThrow();
  });

  it("refuses a duplicate window shorter than two minutes", () => {
    const r = new EnvReader({ DUPLICATE_WINDOW_SECONDS: "60" });
    readTopology(r);
    expect(() => r.done()).toThrow(/DUPLICATE_WINDOW_SECONDS/);
  });

  it("refuses two authentication methods at once", () => {
    const r = new EnvReader({ NATS_TOKEN: "t", NATS_CREDS: "/x.creds" });
    readNats(r, "svc");
    expect(() => r.done()).toThrow(/choose one NATS authentication/);
  });
});
