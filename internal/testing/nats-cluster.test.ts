import { describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsCluster } from "./nats-server.js";
import { provisionTopology, STREAM_NAME } from "../nats/topology.js";

const log = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface JszStreams {
  server_name: string;
  account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[];
}

/** What one node's own replica of a stream holds, from its monitoring endpoint. */
async function replicaState(server: NatsCluster["servers"][number], stream: string) {
  const jsz = await server.monitor<JszStreams>("/jsz?accounts=true&streams=true");
  const detail = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((s) => s.name === stream);
  return detail?.state;
}

describe("NatsCluster harness", () => {
  it("runs a 3-node JetStream cluster that keeps an R3 stream available when a node dies", async () => {
    const cluster = await NatsCluster.start(3);
    const nc = await connect({ servers: cluster.urls });
    try {
      const { jsm, js, topology } = await provisionTopology(nc, { partitions: 4, replicas: 3, duplicateWindowSeconds: 120 }, log);
      const info = await jsm.streams.info(STREAM_NAME);
      expect(info.config.num_replicas).toBe(3);
      expect(info.cluster?.replicas?.length).toBe(2);

      await cluster.servers[2]!.stop("SIGKILL");
      // Two of three nodes still form a quorum: publishing keeps working.
      let ack;
      for (let i = 0; i < 100 && !ack; i++) {
        try {
          ack = await js.publish(topology.subjectFor("r1"), "{}", { msgID: "r1:1", timeout: 2000 });
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      expect(ack?.seq).toBeGreaterThan(0);
    } finally {
      await nc.close();
      await cluster.dispose();
    }
  }, 60_000);

  it("names a stream's leader, and a killed leader restarted on its store catches up with the new one", async () => {
    const cluster = await NatsCluster.start(3);
    const nc = await connect({ servers: cluster.urls });
    try {
      const { js, topology } = await provisionTopology(nc, { partitions: 4, replicas: 3, duplicateWindowSeconds: 120 }, log);
      const publish = async (id: string) => {
        for (let i = 0; i < 100; i++) {
          try {
            return await js.publish(topology.subjectFor("r1"), "{}", { msgID: id, timeout: 2000 });
          } catch {
            await sleep(200);
          }
        }
        throw new Error(`could not publish ${id}`);
      };
      await publish("r1:1");
      const leader = await cluster.streamLeader(STREAM_NAME);
      expect(cluster.servers.map((s) => s.serverName)).toContain(leader.serverName);

      await leader.stop("SIGKILL");
      const next = await cluster.streamLeader(STREAM_NAME);
      expect(next.serverName).not.toBe(leader.serverName);
      await publish("r1:2");

      await leader.launch();
      expect(leader.logs()).toContain(`nats-server ${leader.serverName} started again on its store`);
      const deadline = Date.now() + 20_000;
      let state = await replicaState(leader, STREAM_NAME);
      while ((state?.last_seq ?? 0) < 2 && Date.now() < deadline) {
        await sleep(200);
        state = await replicaState(leader, STREAM_NAME);
      }
      expect(state).toMatchObject({ messages: 2, last_seq: 2 });
    } finally {
      await nc.close();
      await cluster.dispose();
    }
  }, 90_000);
});
