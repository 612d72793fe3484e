import { describe, expect, it } from "vitest";
import { ConfigError } from "../../internal/config/env-reader.js";
import { loadConfig } from "./config.js";

describe("api configuration", () => {
  it("defaults to port 8080, 15 s heartbeats and bounded event streams", () => {
    const config = loadConfig({ AUTH: "off" });
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(config.sse).toEqual({ heartbeatMs: 15_000, maxClients: 256, maxClientsPerClient: 32, maxQueuedBytes: 1_048_576 });
    expect(config.http).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 15_000,
      keepAliveTimeoutMs: 5000,
      idleTimeoutMs: 30_000,
      maxConnections: 8192,
      maxInFlight: 256,
    });
    expect(config.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(config.history.maxMessages).toBe(100_000);
  });

  it("stops within 10 s unless SHUTDOWN_TIMEOUT_MS says otherwise", () => {
    expect(loadConfig({ AUTH: "off" }).shutdownTimeoutMs).toBe(10_000);
    expect(loadConfig({ AUTH: "off", SHUTDOWN_TIMEOUT_MS: "25000" }).shutdownTimeoutMs).toBe(25_000);
    expect(() => loadConfig({ AUTH: "off", SHUTDOWN_TIMEOUT_MS: "soon" })).toThrow(/SHUTDOWN_TIMEOUT_MS/);
  });

  it("reads the history limit", () => {
    expect(loadConfig({ AUTH: "off", HISTORY_MAX_MESSAGES: "5000" }).history.maxMessages).toBe(5000);
    expect(() => loadConfig({ AUTH: "off", HISTORY_MAX_MESSAGES: "0" })).toThrow(ConfigError);
  });

  it("reads how many types and missions the summary lists, 20 by default", () => {
    expect(loadConfig({ AUTH: "off" }).summaryTopLabels).toBe(20);
    expect(loadConfig({ AUTH: "off", SUMMARY_TOP_LABELS: "5" }).summaryTopLabels).toBe(5);
    expect(() => loadConfig({ AUTH: "off", SUMMARY_TOP_LABELS: "5000" })).toThrow(/SUMMARY_TOP_LABELS/);
  });

  it("reads the event stream limits", () => {
    const config = loadConfig({ AUTH: "off", SSE_HEARTBEAT_SECONDS: "5", SSE_MAX_CLIENTS: "10", SSE_MAX_CLIENTS_PER_CLIENT: "3", SSE_MAX_QUEUED_BYTES: "65536", PORT: "9000" });
    expect(config.sse).toEqual({ heartbeatMs: 5000, maxClients: 10, maxClientsPerClient: 3, maxQueuedBytes: 65_536 });
    expect(config.listen.port).toBe(9000);
  });

  it("reads the HTTP server's timeouts and limits, and refuses a headers timeout longer than the request timeout", () => {
    const env = { HTTP_HEADERS_TIMEOUT_MS: "2000", HTTP_REQUEST_TIMEOUT_MS: "3000", HTTP_KEEP_ALIVE_TIMEOUT_MS: "1000", HTTP_IDLE_TIMEOUT_MS: "4000" };
    const config = loadConfig({ AUTH: "off", ...env, HTTP_MAX_CONNECTIONS: "100", HTTP_MAX_IN_FLIGHT: "10" });
    expect(config.http).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 3000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 4000, maxConnections: 100, maxInFlight: 10 });
    expect(() => loadConfig({ AUTH: "off", HTTP_HEADERS_TIMEOUT_MS: "20000", HTTP_REQUEST_TIMEOUT_MS: "15000" })).toThrow(/HTTP_HEADERS_TIMEOUT_MS \(20000\) must be at most HTTP_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ AUTH: "off", HTTP_MAX_IN_FLIGHT: "0" })).toThrow(/HTTP_MAX_IN_FLIGHT/);
  });

  it("lists every invalid setting at once", () => {
    let error: unknown;
    try {
      loadConfig({ AUTH: "off", SSE_HEARTBEAT_SECONDS: "0", SSE_MAX_CLIENTS: "many", LOG_LEVEL: "loud" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const name of ["SSE_HEARTBEAT_SECONDS", "SSE_MAX_CLIENTS", "LOG_LEVEL"]) expect(problems).toContain(name);
  });
});
