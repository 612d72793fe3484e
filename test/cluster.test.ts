// `npm run cluster` as a user runs it: three NATS nodes forming one JetStream
// cluster from their config files, 2 ingest, 3 sequencers and 2 APIs on R3
// streams and buckets, a message through one ingest visible in both APIs,
// every partition owned exactly once, and a clean stop on SIGTERM that stops
// the services before the nodes.

import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../internal/testing/nats-server.js";
import { poll, ScriptProcess } from "./script-process.js";

const dataDir = mkdtempSync(join(tmpdir(), "rockets-cluster-"));
const started: ScriptProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.dispose()));
  rmSync(dataDir, { recursive: true, force: true });
});

/** The first of `count` consecutive free loopback ports. */
async function freePortRange(count: number, taken: Set<number>): Promise<number> {
  for (;;) {
    const first = await freePort();
    const range = Array.from({ length: count }, (_, i) => first + i);
    if (first + count > 65_535 || range.some((p) => taken.has(p))) continue;
    const free = await Promise.all(range.slice(1).map((p) => freePortIs(p)));
    if (free.every(Boolean)) {
      for (const p of range) taken.add(p);
      return first;
    }
  }
}

function freePortIs(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

interface Jsz {
  meta_cluster?: { cluster_size: number; leader?: string };
  account_details?: { stream_detail?: { name: string; config?: { num_replicas: number } }[] }[];
}

const PARTITIONS = 8;

describe("npm run cluster", () => {
  it("runs three NATS nodes and 2 ingest, 3 sequencers, 2 APIs on R3, and stops services before nodes", async () => {
    const taken = new Set<number>();
    const env = {
      DATA_DIR: dataDir,
      NATS_PORT: String(await freePortRange(3, taken)),
      NATS_CLUSTER_PORT: String(await freePortRange(3, taken)),
      NATS_MONITOR_PORT: String(await freePortRange(3, taken)),
      INGEST_PORT: String(await freePortRange(2, taken)),
      SEQUENCER_PORT: String(await freePortRange(3, taken)),
      API_PORT: String(await freePortRange(2, taken)),
      PARTITIONS: String(PARTITIONS),
    };
    const port = (variable: keyof typeof env, i: number) => Number(env[variable]) + i;

    const cluster = ScriptProcess.launch("scripts/cluster.mjs", env);
    started.push(cluster);
    await cluster.waitForOutput(/Rockets \(3-node cluster, 3 replicas\) is running/, 150_000);
    for (const name of ["nats-1", "nats-2", "nats-3", "ingest-1", "ingest-2", "seq-1", "seq-2", "seq-3", "api-1", "api-2"]) {
      expect(cluster.output).toMatch(new RegExp(`^${name} +\\| started \\(pid \\d+\\)`, "m"));
    }
    expect(cluster.output).toContain(`http://127.0.0.1:${port("INGEST_PORT", 1)}/messages`);
    expect(cluster.output).toContain(`http://127.0.0.1:${port("API_PORT", 1)}/rockets`);
    // Closed by default: a key made for this data directory, printed in the launch command.
    const key = readFileSync(join(dataDir, "cluster", "api-key"), "utf8").trim();
    expect(cluster.output).toContain(`npm run launch -- http://rockets:${key}@127.0.0.1:${port("INGEST_PORT", 0)}/messages`);
    const auth = { authorization: `Bearer ${key}` };

    // Each node runs from its own config file and store, and all three form one JetStream cluster.
    for (const n of [1, 2, 3]) {
      const config = readFileSync(join(dataDir, "cluster", `n${n}`, "nats.conf"), "utf8");
      expect(config).toContain(`server_name: "n${n}"`);
      expect(existsSync(join(dataDir, "cluster", `n${n}`, "jetstream"))).toBe(true);
      const jsz = await poll(`n${n}'s view of the meta cluster`, 10_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port("NATS_MONITOR_PORT", n - 1)}/jsz`);
        const body = (await res.json()) as Jsz;
        return body.meta_cluster?.leader ? body : undefined;
      });
      expect(jsz.meta_cluster?.cluster_size).toBe(3);
    }

    // A message posted to the second ingest reaches both APIs.
    const channel = randomUUID();
    const posted = await fetch(`http://127.0.0.1:${port("INGEST_PORT", 1)}/messages`, {
      method: "POST",
      body: JSON.stringify({
        metadata: { channel, messageNumber: 1, messageTime: "2025-04-02T09:21:50.458989221+02:00", messageType: "RocketLaunched" },
        message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
      }),
      headers: auth,
    });
    expect(posted.status).toBe(202);
    for (const i of [0, 1]) {
      const rocket = await poll(`the rocket in api-${i + 1}`, 20_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port("API_PORT", i)}/rockets/${channel}`, { headers: auth });
        return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
      });
      expect(rocket).toMatchObject({ channel, status: "launched", lastMessageNumber: 1 });
    }

    // The stream and every bucket were created with three replicas.
    const jsz = (await (await fetch(`http://127.0.0.1:${port("NATS_MONITOR_PORT", 0)}/jsz?accounts=true&streams=true&config=true`)).json()) as Jsz;
    const replicas = Object.fromEntries((jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).map((s) => [s.name, s.config?.num_replicas]));
    expect(replicas).toEqual({ ROCKETS_EVENTS: 3, KV_rockets_state: 3, KV_rockets_leases: 3, KV_rockets_topology: 3 });

    // The three sequencers share the partitions, each owned once.
    const owned = await poll("every partition owned once", 30_000, async () => {
      const lists = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const res = await fetch(`http://127.0.0.1:${port("SEQUENCER_PORT", i)}/partitions`, { headers: auth });
          return ((await res.json()) as { partitions: number[] }).partitions;
        }),
      );
      const all = lists.flat().sort((a, b) => a - b);
      return all.length === PARTITIONS && new Set(all).size === PARTITIONS ? lists : undefined;
    });
    expect(owned.every((list) => list.length > 0)).toBe(true);

    expect(await cluster.stop("SIGTERM")).toBe(0);
    expect(cluster.output).toMatch(/^cluster +\| stopped/m);
    const lastServiceStopped = Math.max(
      ...["ingest-1", "ingest-2", "seq-1", "seq-2", "seq-3", "api-1", "api-2"].map((name) => {
        const at = cluster.output.search(new RegExp(`^${name} +\\| stopped`, "m"));
        expect(at, `${name} stopped`).toBeGreaterThan(-1);
        return at;
      }),
    );
    for (const node of ["nats-1", "nats-2", "nats-3"]) {
      expect(cluster.output.search(new RegExp(`^${node} +\\| stopped`, "m"))).toBeGreaterThan(lastServiceStopped);
    }
  }, 240_000);
});
