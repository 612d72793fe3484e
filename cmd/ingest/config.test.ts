import { describe, expect, it } from "vitest";
import { ConfigError } from "../../internal/config/env-reader.js";
import { loadConfig } from "./config.js";

describe("ingest loadConfig", () => {
  it("defaults to port 8088, 64 KiB messages, batches of 1000 and a 5 s publish timeout", () => {
    const config = loadConfig({ AUTH: "off" });
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 8088 });
    expect(config).toMatchObject({
      bodyLimitBytes: 65_536,
      batchBodyLimitBytes: 1_048_576,
      maxBatch: 1000,
      publishTimeoutMs: 5000,
      publishMaxInFlight: 512,
      retryAfterSeconds: 1,
      logLevel: "info",
    });
    expect(config.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(config.nats.name).toBe("ingest");
  });

  it("limits each client to 100,000 requests per 10 s by default, settable and off at 0", () => {
    expect(loadConfig({ AUTH: "off" }).rateLimit).toEqual({ max: 300_000, windowSeconds: 10 });
    expect(loadConfig({ AUTH: "off", RATE_LIMIT_MAX: "50", RATE_LIMIT_WINDOW_SECONDS: "2" }).rateLimit).toEqual({ max: 50, windowSeconds: 2 });
    expect(loadConfig({ AUTH: "off", RATE_LIMIT_MAX: "0" }).rateLimit.max).toBe(0);
    expect(() => loadConfig({ AUTH: "off", RATE_LIMIT_WINDOW_SECONDS: "0" })).toThrow(/RATE_LIMIT_WINDOW_SECONDS/);
    expect(loadConfig({ AUTH: "off", HTTP_REQUEST_TIMEOUT_MS: "4000" }).http.requestTimeoutMs).toBe(4000);
  });

  it("reads its own settings next to the shared ones", () => {
    const config = loadConfig({
      AUTH: "off",
      NATS_URL: "nats://a:4222,nats://b:4222",
      PORT: "9000",
      BODY_LIMIT_BYTES: "2048",
      MAX_BATCH: "10",
      PUBLISH_TIMEOUT_MS: "800",
      RETRY_AFTER_SECONDS: "5",
    });
    expect(config).toMatchObject({ bodyLimitBytes: 2048, maxBatch: 10, publishTimeoutMs: 800, retryAfterSeconds: 5 });
    expect(config.listen.port).toBe(9000);
    expect(config.nats.servers).toEqual(["nats://a:4222", "nats://b:4222"]);
  });

  it("stops within the publish timeout plus 10 s unless SHUTDOWN_TIMEOUT_MS says otherwise", () => {
    expect(loadConfig({ AUTH: "off" }).shutdownTimeoutMs).toBe(15_000);
    expect(loadConfig({ AUTH: "off", PUBLISH_TIMEOUT_MS: "800" }).shutdownTimeoutMs).toBe(10_800);
    expect(loadConfig({ AUTH: "off", SHUTDOWN_TIMEOUT_MS: "30000" }).shutdownTimeoutMs).toBe(30_000);
    expect(() => loadConfig({ AUTH: "off", SHUTDOWN_TIMEOUT_MS: "0" })).toThrow(/SHUTDOWN_TIMEOUT_MS/);
  });

  it("lists every problem at once", () => {
    let caught: unknown;
    try {
      loadConfig({ AUTH: "off", MAX_BATCH: "0", PUBLISH_TIMEOUT_MS: "soon", BODY_LIMIT_BYTES: "-1", PORT: "99999", NATS_TOKEN: "t", NATS_USER: "u", NATS_PASSWORD: "p" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join("\n");
    for (const name of ["MAX_BATCH", "PUBLISH_TIMEOUT_MS", "BODY_LIMIT_BYTES", "PORT", "choose one NATS authentication"]) {
      expect(problems).toContain(name);
    }
  });
});
