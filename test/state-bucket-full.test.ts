// A full state bucket loses nothing: with a tiny STATE_MAX_BYTES the
// sequencer's state writes are refused (counted, for the RocketsStateBucketFull
// alert), their messages are not acked and come back, and once an operator
// raises the cap with `npm run topology -- set state-max-bytes=...` every
// rocket ends in its exact state. A service configured with another cap than
// the bucket's refuses to start rather than change it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { runLaunch } from "../scripts/launch/launch.js";
import { TEST_KEYS } from "../internal/testing/api-keys.js";
import { metricValue } from "../internal/testing/metrics.js";
import { REPO_ROOT, ServiceProcess } from "../internal/testing/service-process.js";
import { RocketsSystem, sleep } from "./rockets-system.js";

const run = promisify(execFile);

describe("a full state bucket", () => {
  let system: RocketsSystem;
  beforeAll(async () => {
    system = await RocketsSystem.start({ env: { STATE_MAX_BYTES: "64KiB" } });
  });
  afterAll(async () => {
    await system?.dispose();
  });

  it("refuses state writes without acking them, and applies every message exactly once the cap is raised", async () => {
    const sequencer = system.sequencers[0]!;
    const launched = runLaunch({
      url: system.messagesUrl,
      maxMessages: 2000,
      rockets: 400,
      seed: 1414,
      duplicateRate: 0.05,
      reorderWindow: 20,
      concurrency: 8,
      key: TEST_KEYS.operator,
      verifyUrl: system.apiUrl,
      verifyTimeoutMs: 60_000,
    });
    const deadline = Date.now() + 30_000;
    let refused = 0;
    while (refused === 0 && Date.now() < deadline) {
      await sleep(200);
      refused = await metricValue(sequencer.url, "rockets_sequencer_state_writes_refused_total");
    }
    expect(refused, system.logs()).toBeGreaterThan(0);
    // Full: rockets stop changing, nothing is acked meanwhile.
    const { stdout } = await run(process.execPath, ["--import", "tsx", join("scripts", "topology.ts"), "set", "state-max-bytes=16MiB"], {
      cwd: REPO_ROOT,
      env: { ...process.env, NATS_URL: system.nats.url },
    });
    expect(JSON.parse(stdout)).toMatchObject({ state: { maxBytes: 16 * 2 ** 20 } });
    const result = await launched;
    system.expectExact(result);
    expect(result.expected.size).toBe(400);
  });

  it("refuses (exit 78) a service whose STATE_MAX_BYTES differs from the bucket's, naming the deliberate way to change it", async () => {
    const api = await ServiceProcess.spawn("api", { natsUrl: system.nats.url, env: { STATE_MAX_BYTES: "64KiB" } });
    try {
      expect(await api.waitForExit(20_000)).toBe(78);
      expect(api.logs()).toMatch(/"level":60.*STATE_MAX_BYTES=65536 but bucket rockets_state has 16777216.*npm run topology -- set state-max-bytes=65536/);
    } finally {
      await api.stop("SIGKILL");
    }
  }, 30_000);
});
