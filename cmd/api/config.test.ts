import { describe, expect, it } from "vitest";
import { ConfigError } from "../../internal/config/env-reader.js";
import { loadConfig } from "./config.js";

describe("api configuration", () => {
  it("defaults to port 8080, 15 s heartbeats and bounded event streams", () => {
    const config = loadConfig({});
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(config.sse).toEqual({ heartbeatMs: 15_000, maxClients: 256, maxQueuedBytes: 1_048_576 });
    expect(config.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(config.history.maxMessages).toBe(100_000);
  });

  it("reads the history limit", () => {
    expect(loadConfig({ HISTORY_MAX_MESSAGES: "5000" }).history.maxMessages).toBe(5000);
    expect(() => loadConfig({ HISTORY_MAX_MESSAGES: "0" })).toThrow(ConfigError);
  });

  it("reads the event stream limits", () => {
    const config = loadConfig({ SSE_HEARTBEAT_SECONDS: "5", SSE_MAX_CLIENTS: "10", SSE_MAX_QUEUED_BYTES: "65536", PORT: "9000" });
    expect(config.sse).toEqual({ heartbeatMs: 5000, maxClients: 10, maxQueuedBytes: 65_536 });
    expect(config.listen.port).toBe(9000);
  });

  it("lists every invalid setting at once", () => {
    let error: unknown;
    try {
      loadConfig({ SSE_HEARTBEAT_SECONDS: "0", SSE_MAX_CLIENTS: "many", LOG_LEVEL: "loud" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const name of ["SSE_HEARTBEAT_SECONDS", "SSE_MAX_CLIENTS", "LOG_LEVEL"]) expect(problems).toContain(name);
  });
});
