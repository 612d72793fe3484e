// The whole flow as operators drive it: the load program POSTs duplicated,
// reordered traffic over hundreds of rockets to ingest, one connection per
// message; the sequencer orders it; the API shows the fleet. Every rocket must
// end in exactly the state of applying its messages once, in order.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { summaryLine } from "../scripts/launch/progress.js";
import { runLaunch } from "../scripts/launch/launch.js";
import { metricValue } from "../internal/testing/metrics.js";
import { RocketsSystem } from "./rockets-system.js";
import { bearer, TEST_KEYS } from "../internal/testing/api-keys.js";

describe("the whole system", () => {
  let system: RocketsSystem;
  beforeAll(async () => {
    system = await RocketsSystem.start();
  });
  afterAll(async () => {
    await system?.dispose();
  });

  it("ends every rocket in its exact state after duplicated, reordered traffic over hundreds of rockets", async () => {
    const result = await runLaunch({
      url: system.messagesUrl,
      maxMessages: 4000,
      rockets: 300,
      seed: 1001,
      duplicateRate: 0.1,
      reorderWindow: 300,
      concurrency: 8,
      verifyUrl: system.apiUrl,
      verifyTimeoutMs: 60_000,
      key: TEST_KEYS.operator,
    });
    console.info(summaryLine(result));
    system.expectExact(result);
    expect(result.posts).toBe(4000 + result.duplicates);
    expect(result.duplicates).toBeGreaterThan(250);

    // A healthy system answers every POST with a 2xx at the first attempt.
    expect(Object.fromEntries(result.failures)).toEqual({});
    // Nothing stored twice: ingest stored each distinct message once and
    // recognised every resend as a duplicate.
    const ingest = system.ingest.url;
    expect(await metricValue(ingest, "rockets_ingest_messages_total", { result: "accepted" })).toBe(4000);
    expect(await metricValue(ingest, "rockets_ingest_messages_total", { result: "duplicate" })).toBe(result.duplicates);

    // The API shows exactly these rockets and nothing else.
    const page = (await (await fetch(`${system.apiUrl}/rockets?limit=1`, { headers: bearer(TEST_KEYS.reader) })).json()) as { total: number };
    expect(page.total).toBe(300);
  }, 120_000);
});
