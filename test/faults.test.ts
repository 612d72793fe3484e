// Faults in the middle of a load, each ending in the exact final state of
// every rocket: nothing lost, nothing applied twice. The load program keeps
// retrying (every 500 ms) whatever the system answers meanwhile, as the
// operators' test program does.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { summaryLine } from "../scripts/launch/progress.js";
import { runLaunch, type LaunchInput } from "../scripts/launch/launch.js";
import { verifyFleet } from "../scripts/launch/verifier.js";
import { metricValue } from "../internal/testing/metrics.js";
import { FAST_FAILOVER_ENV, RocketsSystem, sleep, whenSent } from "./rockets-system.js";
import { bearer, TEST_KEYS } from "../internal/testing/api-keys.js";

// Sized to take seconds on a quiet 2-core machine (about a minute when it is
// heavily shared); keep-alive and 8 in flight keep the client's share of the
// CPU small. Reordering still comes from concurrency and the reorder window.
const MESSAGES = 2400;

function load(system: RocketsSystem, seed: number): LaunchInput {
  return {
    url: system.messagesUrl,
    maxMessages: MESSAGES,
    rockets: 150,
    seed,
    duplicateRate: 0.05,
    reorderWindow: 100,
    concurrency: 8,
    keepAlive: true,
    verifyUrl: system.apiUrl,
    verifyTimeoutMs: 90_000,
    key: TEST_KEYS.operator,
  };
}

/** Starts a launch and returns it with a promise of its live progress. */
function launch(input: LaunchInput) {
  let started!: (p: { sent: () => number }) => void;
  const progress = new Promise<{ sent: () => number }>((resolve) => (started = resolve));
  const result = runLaunch(input, { onStart: started });
  return { result, progress };
}

describe("faults during a load, one sequencer and one API", () => {
  // The faults run one after the other on the same system: each must also
  // leave it healthy for the next load.
  let system: RocketsSystem;
  beforeAll(async () => {
    system = await RocketsSystem.start();
  });
  afterAll(async () => {
    await system?.dispose();
  });

  it("recovers the exact state when the sequencer is killed with SIGKILL mid-run and restarted", async () => {
    const run = launch(load(system, 2001));
    await whenSent(run.progress, MESSAGES / 3);
    const sequencer = system.sequencers[0]!;
    expect(await sequencer.stop("SIGKILL")).toBeNull();
    await sleep(500);
    await sequencer.launch();
    const result = await run.result;
    console.info(summaryLine(result));
    system.expectExact(result);
  }, 180_000);

  it("carries on through a nats-server stop and restart on the same port and store, ingest answering 503 meanwhile", async () => {
    const run = launch(load(system, 2002));
    await whenSent(run.progress, MESSAGES / 3);
    await system.nats.stop("SIGTERM");

    // While NATS is away nothing can be stored, so nothing may be acknowledged.
    const probe = await fetch(system.messagesUrl, {
      method: "POST",
      body: JSON.stringify({
        metadata: { channel: "probe-while-nats-down", messageNumber: 1, messageTime: "2025-04-02T09:21:50Z", messageType: "RocketLaunched" },
        message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
      }),
      headers: bearer(TEST_KEYS.writer),
    });
    expect(probe.status).toBe(503);
    expect(probe.headers.get("retry-after")).toMatch(/^\d+$/);
    await sleep(1500);

    await system.nats.launch();
    const result = await run.result;
    console.info(summaryLine(result));
    system.expectExact(result);
    expect(result.failures.get("503") ?? 0).toBeGreaterThan(0);
  }, 180_000);
});

describe("faults during a load, two sequencers and two APIs", () => {
  let system: RocketsSystem;
  beforeAll(async () => {
    system = await RocketsSystem.start({ sequencers: 2, apis: 2 });
  });
  afterAll(async () => {
    await system?.dispose();
  });

  it("keeps the exact state when one sequencer is killed with SIGKILL and the other takes over", async () => {
    const run = launch(load(system, 2003));
    await whenSent(run.progress, MESSAGES / 3);
    expect(await system.sequencers[0]!.stop("SIGKILL")).toBeNull();
    const result = await run.result;
    console.info(summaryLine(result));
    system.expectExact(result);

    // The survivor owns every partition now.
    expect(await metricValue(system.sequencers[1]!.url, "rockets_sequencer_partitions_owned")).toBe(Number(FAST_FAILOVER_ENV.PARTITIONS));
    // The second API instance shows the same fleet.
    const second = await verifyFleet({ apiUrl: system.apis[1]!.url, key: TEST_KEYS.reader, expected: result.expected, timeoutMs: 30_000 });
    expect(second.mismatches.slice(0, 5)).toEqual([]);
  }, 180_000);
});
