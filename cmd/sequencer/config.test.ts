import { describe, expect, it } from "vitest";
import { ConfigError } from "../../internal/config/env-reader.js";
import { defaultInstanceId, loadConfig } from "./config.js";

describe("sequencer config", () => {
  it("defaults to the ops port, a 10,000-message buffer and a 5 s lease with 1 s heartbeats", () => {
    const c = loadConfig({ AUTH: "off" });
    expect(c.listen.port).toBe(9090);
    expect(c.maxPendingPerChannel).toBe(10_000);
    expect(c.leaseTtlMs).toBe(5000);
    expect(c.heartbeatMs).toBe(1000);
    expect(c.ackWaitMs).toBe(30_000);
    expect(c.shutdownTimeoutMs).toBe(20_000);
    expect(c.writeLingerMs).toBe(5);
    expect(c.fetchExpiresMs).toBe(1000);
    expect(c.instanceId).toBe(defaultInstanceId());
    expect(c.instanceId).toMatch(/^[-_=A-Za-z0-9]{1,64}$/);
  });

  it("reads every sequencer setting", () => {
    const c = loadConfig({
      AUTH: "off",
      INSTANCE_ID: "seq-7",
      MAX_PENDING_PER_CHANNEL: "50",
      LEASE_TTL_MS: "3000",
      HEARTBEAT_MS: "500",
      ACTOR_IDLE_MS: "2000",
      MAX_ACTORS: "10",
      KV_WRITE_CONCURRENCY: "8",
      STATE_WRITE_LINGER_MS: "0",
      FETCH_BATCH: "100",
      FETCH_EXPIRES_MS: "8000",
      MAX_ACK_PENDING: "1000",
      ACK_WAIT_MS: "4000",
      RETRY_DELAY_MS: "250",
      LAG_POLL_MS: "1000",
      SHUTDOWN_TIMEOUT_MS: "9000",
      GAP_POLICY: "skip",
      GAP_DEADLINE_SECONDS: "2h",
      MAX_BUFFERED_MESSAGES: "5000",
      MAX_BUFFERED_BYTES: "16MiB",
      MAX_UNLAUNCHED_CHANNELS: "300",
    });
    expect(c).toMatchObject({
      instanceId: "seq-7",
      maxPendingPerChannel: 50,
      leaseTtlMs: 3000,
      heartbeatMs: 500,
      actorIdleMs: 2000,
      maxActors: 10,
      kvConcurrency: 8,
      writeLingerMs: 0,
      fetchBatch: 100,
      fetchExpiresMs: 8000,
      maxAckPending: 1000,
      ackWaitMs: 4000,
      retryDelayMs: 250,
      lagPollMs: 1000,
      shutdownTimeoutMs: 9000,
      gapPolicy: "skip",
      gapDeadlineSeconds: 7200,
      maxBufferedMessages: 5000,
      maxBufferedBytes: 16 * 2 ** 20,
      maxUnlaunchedChannels: 300,
    });
  });

  it("waits on gaps by default, reviewing them after a day, with bounded memory and unlaunched channels", () => {
    expect(loadConfig({ AUTH: "off" })).toMatchObject({
      gapPolicy: "wait",
      gapDeadlineSeconds: 86_400,
      maxBufferedMessages: 200_000,
      maxBufferedBytes: 64 * 2 ** 20,
      maxUnlaunchedChannels: 10_000,
    });
  });

  it("refuses a gap deadline at or past the stream's retention, and an unknown policy", () => {
    let caught: unknown;
    try {
      loadConfig({ AUTH: "off", GAP_DEADLINE_SECONDS: "7d", GAP_POLICY: "drop" });
    } catch (err) {
      caught = err;
    }
    const problems = (caught as ConfigError).problems.join("\n");
    expect(problems).toMatch(/GAP_DEADLINE_SECONDS \(604800s\) must be shorter than the stream's retention STREAM_MAX_AGE \(604800s\)/);
    expect(problems).toMatch(/GAP_POLICY must be one of wait, skip, got "drop"/);
    expect(() => loadConfig({ AUTH: "off", GAP_DEADLINE_SECONDS: "2d", STREAM_MAX_AGE: "1d" })).toThrow(/must be shorter than the stream's retention/);
    expect(loadConfig({ AUTH: "off", GAP_DEADLINE_SECONDS: "2d", STREAM_MAX_AGE: "3d" }).gapDeadlineSeconds).toBe(172_800);
  });

  it("lists every problem at once, including an unusable instance id and a heartbeat too slow for the lease", () => {
    let caught: unknown;
    try {
      loadConfig({ AUTH: "off", INSTANCE_ID: "seq.1", MAX_PENDING_PER_CHANNEL: "0", LEASE_TTL_MS: "2000", HEARTBEAT_MS: "1500", STATE_WRITE_LINGER_MS: "5000", FETCH_EXPIRES_MS: "500" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join("\n");
    expect(problems).toMatch(/MAX_PENDING_PER_CHANNEL must be an integer from 1/);
    // A linger past a second would hold every quiet channel's update back visibly.
    expect(problems).toMatch(/STATE_WRITE_LINGER_MS must be an integer from 0 to 1000/);
    // The client ends a pull no sooner than a second.
    expect(problems).toMatch(/FETCH_EXPIRES_MS must be an integer from 1000 to 30000/);
    expect(problems).toMatch(/INSTANCE_ID must be 1 to 64 characters/);
    expect(problems).toMatch(/HEARTBEAT_MS \(1500\) must be at most a third of LEASE_TTL_MS \(2000\)/);
  });

  it("refuses a heartbeat of half the lease (one late renewal would lose it) and takes a third", () => {
    expect(() => loadConfig({ AUTH: "off", LEASE_TTL_MS: "3000", HEARTBEAT_MS: "1500" })).toThrow(/HEARTBEAT_MS \(1500\) must be at most a third/);
    expect(loadConfig({ AUTH: "off", LEASE_TTL_MS: "3000", HEARTBEAT_MS: "1000" }).heartbeatMs).toBe(1000);
  });
});
