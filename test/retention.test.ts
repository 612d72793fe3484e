// Retention trims history, never state: after the events stream has dropped
// its oldest messages (a smaller STREAM_MAX_BYTES, set on purpose with
// changeTopology as `npm run topology -- set` does), every rocket is still
// exact, also for a sequencer and an API started afresh, and the trimmed
// rockets keep taking new messages.

import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLaunch, type LaunchInput } from "../scripts/launch/launch.js";
import { verifyFleet } from "../scripts/launch/verifier.js";
import { changeTopology, STREAM_NAME } from "../internal/nats/topology.js";
import { RocketsSystem } from "./rockets-system.js";
import { TEST_KEYS } from "../internal/testing/api-keys.js";

const TRIMMED_BYTES = 2 ** 20;

function load(system: RocketsSystem, seed: number, maxMessages: number): LaunchInput {
  return {
    url: system.messagesUrl,
    maxMessages,
    rockets: 60,
    seed,
    duplicateRate: 0.05,
    reorderWindow: 50,
    concurrency: 8,
    keepAlive: true,
    verifyUrl: system.apiUrl,
    verifyTimeoutMs: 60_000,
    key: TEST_KEYS.operator,
  };
}

describe("retention of the events stream", () => {
  let system: RocketsSystem;
  beforeAll(async () => {
    system = await RocketsSystem.start();
  });
  afterAll(async () => {
    await system?.dispose();
  });

  it("keeps every rocket exact when old history is trimmed, across restarts and new messages", async () => {
    // Enough history to be more than the trimmed limit (~350 bytes a message).
    const first = await runLaunch(load(system, 3001, 4000));
    system.expectExact(first);

    const nc = await connect({ servers: system.nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const before = (await jsm.streams.info(STREAM_NAME)).state;
      expect(before.bytes).toBeGreaterThan(TRIMMED_BYTES);
      await changeTopology(nc, { maxBytes: TRIMMED_BYTES }, pino({ level: "silent" }));
      const after = (await jsm.streams.info(STREAM_NAME)).state;
      expect(after.bytes).toBeLessThanOrEqual(TRIMMED_BYTES);
      // Hundreds of the oldest messages are gone (compressed, ~1,000 messages fit in a MiB), early launches among them.
      expect(after.first_seq).toBeGreaterThan(before.first_seq + 500);
      expect(after.messages).toBeLessThan(before.messages);
    } finally {
      await nc.close();
    }

    // State lives in KV: a fresh sequencer and API show the same exact fleet.
    await system.sequencers[0]!.stop("SIGTERM");
    await system.apis[0]!.stop("SIGTERM");
    await system.sequencers[0]!.launch();
    await system.apis[0]!.launch();
    const again = await verifyFleet({ apiUrl: system.apiUrl, key: TEST_KEYS.reader, expected: first.expected, timeoutMs: 30_000 });
    expect(again.mismatches.slice(0, 5)).toEqual([]);

    // The same rockets go on (the test program's same seed resends the same messages: all duplicates
    // now), and new rockets launch and end exact too.
    const resent = await runLaunch(load(system, 3001, 4000));
    system.expectExact(resent);
    const more = await runLaunch(load(system, 3002, 1500));
    system.expectExact(more);
  }, 180_000);
});
