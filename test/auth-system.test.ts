// The whole system as it runs by default, AUTH=on, over real HTTP: a rocket
// holding a write key is stored whether it sends the key as Bearer or the way
// the operators' Go program sends a URL's userinfo (Basic); a client
// without a write key cannot explode someone else's rocket; a write key
// cannot read and a read key cannot post; probes answer anyone, /metrics
// does not.

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicFromUrl, bearer, TEST_KEYS } from "../internal/testing/api-keys.js";
import { runLaunch } from "../scripts/launch/launch.js";
import { RocketsSystem, sleep } from "./rockets-system.js";

let system: RocketsSystem;
beforeAll(async () => {
  system = await RocketsSystem.start();
}, 90_000);
afterAll(async () => {
  await system?.dispose();
});

const at = "2022-02-02T19:39:05.86337+01:00";
const launched = (channel: string) => ({
  metadata: { channel, messageNumber: 1, messageTime: at, messageType: "RocketLaunched" },
  message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
});
const exploded = (channel: string, messageNumber: number) => ({
  metadata: { channel, messageNumber, messageTime: at, messageType: "RocketExploded" },
  message: { reason: "FORGED" },
});
const faster = (channel: string, messageNumber: number) => ({
  metadata: { channel, messageNumber, messageTime: at, messageType: "RocketSpeedIncreased" },
  message: { by: 100 },
});

const post = (body: unknown, headers: Record<string, string>) =>
  fetch(system.messagesUrl, { method: "POST", body: JSON.stringify(body), headers: { ...headers, "content-type": "application/json" } });

async function rocket(channel: string, key = TEST_KEYS.reader): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await fetch(`${system.apiUrl}/rockets/${channel}`, { headers: bearer(key) });
    if (res.status === 200) return (await res.json()) as Record<string, unknown>;
    if (res.status !== 404 || Date.now() > deadline) throw new Error(`GET /rockets/${channel}: ${res.status} ${await res.text()}\n${system.logs()}`);
    await sleep(50);
  }
}

describe("with AUTH=on (the default)", () => {
  it("answers 401 without a key and 202 with a write key as Bearer", async () => {
    const channel = randomUUID();
    const refused = await post(launched(channel), {});
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="rockets", Basic realm="rockets"');
    expect(refused.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect((await post(launched(channel), bearer(TEST_KEYS.writer))).status).toBe(202);
    expect(await rocket(channel)).toMatchObject({ channel, speed: 500 });
  }, 30_000);

  it("answers 202 to Basic auth built from a URL's userinfo, as Go's client sends it", async () => {
    const channel = randomUUID();
    const withKey = system.messagesUrl.replace("http://", `http://rockets:${TEST_KEYS.writer}@`);
    expect((await post(launched(channel), basicFromUrl(withKey))).status).toBe(202);
    expect(await rocket(channel)).toMatchObject({ channel, mission: "ARTEMIS" });
  }, 30_000);

  it("runs the load program against a URL with the key in its userinfo, verified through a read key", async () => {
    const url = system.messagesUrl.replace("http://", `http://rockets:${TEST_KEYS.writer}@`);
    const verifyUrl = system.apiUrl.replace("http://", `http://console:${TEST_KEYS.reader}@`);
    const result = await runLaunch({ url, verifyUrl, maxMessages: 200, rockets: 4, seed: 15_001, verifyTimeoutMs: 30_000 });
    expect(result.failures.size, [...result.failures].join(", ")).toBe(0);
    system.expectExact(result);
  }, 60_000);

  it("refuses a forged explosion from a client without a write key; the owner's message still applies", async () => {
    const channel = randomUUID();
    expect((await post(launched(channel), bearer(TEST_KEYS.writer))).status).toBe(202);
    for (const headers of [{}, bearer(TEST_KEYS.reader), bearer(TEST_KEYS.scraper), bearer("forged")]) {
      expect([401, 403]).toContain((await post(exploded(channel, 2), headers)).status);
    }
    expect((await post(faster(channel, 2), bearer(TEST_KEYS.writer))).status).toBe(202);
    const deadline = Date.now() + 15_000;
    let state = await rocket(channel);
    while (state["lastMessageNumber"] !== 2 && Date.now() < deadline) {
      await sleep(50);
      state = await rocket(channel);
    }
    expect(state).toMatchObject({ lastMessageNumber: 2, speed: 600, status: "launched", explosionReason: null });
  }, 30_000);

  it("does not let a write key read, nor a read key post", async () => {
    expect((await fetch(`${system.apiUrl}/rockets`, { headers: bearer(TEST_KEYS.writer) })).status).toBe(403);
    expect((await fetch(`${system.apiUrl}/rockets`)).status).toBe(401);
    expect((await post(launched(randomUUID()), bearer(TEST_KEYS.reader))).status).toBe(403);
  });

  it("keeps /healthz and /readyz open and /metrics closed on every public port", async () => {
    for (const base of [system.ingest.url, system.sequencers[0]!.url, system.apiUrl]) {
      expect((await fetch(`${base}/healthz`)).status, base).toBe(200);
      expect((await fetch(`${base}/readyz`)).status, base).toBe(200);
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status, base).toBe(401);
      expect(await metrics.text()).not.toContain("rockets_");
    }
    expect((await fetch(`${system.sequencers[0]!.url}/partitions`)).status).toBe(401);
  });
});
