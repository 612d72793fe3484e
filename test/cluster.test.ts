// `npm run cluster` as a user runs it: three NATS nodes forming one JetStream
// cluster from their config files, 2 ingest, 3 sequencers and 2 APIs on R3
// streams and buckets, a message through one ingest visible in both APIs,
// every partition owned exactly once, and a clean stop on SIGTERM that stops
// the services before the nodes.

import { randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, NATS_SERVER_BIN } from "../internal/testing/nats-server.js";
import { REPO_ROOT as ROOT } from "../internal/testing/service-process.js";
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
  account_details?: { name: string; stream_detail?: { name: string; config?: { num_replicas: number } }[] }[];
}

interface Connz {
  connections: { name?: string; authorized_user?: string; account?: string }[];
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
    // The banner's lines can arrive in more than one read of the pipe: its last line says all of it is in.
    await cluster.waitForOutput(/Ctrl-C stops everything\./, 10_000);
    for (const name of ["nats-1", "nats-2", "nats-3", "ingest-1", "ingest-2", "seq-1", "seq-2", "seq-3", "api-1", "api-2"]) {
      expect(cluster.output).toMatch(new RegExp(`^${name} +\\| started \\(pid \\d+\\)`, "m"));
    }
    expect(cluster.output).toContain(`http://127.0.0.1:${port("INGEST_PORT", 1)}/messages`);
    expect(cluster.output).toContain(`http://127.0.0.1:${port("API_PORT", 1)}/rockets`);
    // Closed by default: a key made for this data directory, printed in the launch command.
    const key = readFileSync(join(dataDir, "cluster", "api-key"), "utf8").trim();
    expect(cluster.output).toContain(`npm run launch -- http://rockets:${key}@127.0.0.1:${port("INGEST_PORT", 0)}/messages`);
    const auth = { authorization: `Bearer ${key}` };

    // Each node runs from its own config file and store, and all three form one JetStream cluster,
    // with the accounts of every deployment and routes that ask for the route password (kept out of the file).
    const routePassword = readFileSync(join(dataDir, "cluster", "nats-users", "route"), "utf8").trim();
    for (const n of [1, 2, 3]) {
      const config = readFileSync(join(dataDir, "cluster", `n${n}`, "nats.conf"), "utf8");
      expect(config).toContain(`server_name: "n${n}"`);
      expect(config).toContain("include ./accounts.conf");
      expect(readFileSync(join(dataDir, "cluster", `n${n}`, "accounts.conf"), "utf8")).toBe(readFileSync(join(ROOT, "deploy", "nats", "accounts.conf"), "utf8"));
      expect(config).toContain("password: $NATS_ROUTE_PASSWORD");
      expect(config).not.toContain(routePassword);
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
    // In the account that holds them, and in no other.
    expect((jsz.account_details ?? []).map((a) => a.name)).toEqual(["ROCKETS"]);

    // Every service connects as its own user, in its own account (deploy/nats/accounts.conf).
    const users: Record<string, string> = {};
    for (const n of [0, 1, 2]) {
      const connz = (await (await fetch(`http://127.0.0.1:${port("NATS_MONITOR_PORT", n)}/connz?auth=true&limit=1024`)).json()) as Connz;
      for (const c of connz.connections) if (c.name) users[c.name] = `${c.authorized_user}@${c.account}`;
    }
    const expected: Record<string, string> = {};
    for (const i of [1, 2]) expected[`ingest-${i}`] = "ingest@INGEST";
    for (const i of [1, 2, 3]) expected[`seq-${i}`] = "sequencer@ROCKETS";
    for (const i of [1, 2]) expected[`api-${i}`] = "api@API";
    expect(Object.fromEntries(Object.entries(users).filter(([name]) => name in expected))).toEqual(expected);

    // A server that reaches the route ports without the route password gets no route.
    const intruderDir = join(dataDir, "intruder");
    mkdirSync(intruderDir);
    const intruderConf = join(intruderDir, "nats.conf");
    const intruderMonitor = await freePort();
    const routes = [0, 1, 2].map((i) => `nats-route://127.0.0.1:${port("NATS_CLUSTER_PORT", i)}`);
    writeFileSync(
      intruderConf,
      `server_name: intruder\nlisten: "127.0.0.1:${await freePort()}"\nhttp: "127.0.0.1:${intruderMonitor}"\n` +
        `cluster { name: "rockets-local", listen: "127.0.0.1:${await freePort()}", routes: [${routes.map((r) => `"${r}"`).join(", ")}] }\n`,
    );
    const intruder = spawn(NATS_SERVER_BIN, ["-c", intruderConf], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 3000));
      for (const n of [0, 1, 2]) {
        const routez = (await (await fetch(`http://127.0.0.1:${port("NATS_MONITOR_PORT", n)}/routez`)).json()) as { routes: { remote_name?: string }[] };
        expect([...new Set(routez.routes.map((r) => r.remote_name))].sort(), `routes of n${n + 1}`).toEqual(["n1", "n2", "n3"].filter((x) => x !== `n${n + 1}`));
      }
    } finally {
      intruder.kill("SIGKILL");
    }

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
