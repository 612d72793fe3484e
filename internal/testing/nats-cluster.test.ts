import { describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { NatsCluster } from "./nats-server.js";
import { provisionTopology, STREAM_NAME } from "../nats/topology.js";

describe("NatsCluster harness", () => {
  it("runs a 3-node JetStream cluster that keeps an R3 stream available when a node dies", async () => {
    const cluster = await NatsCluster.start(3);
    const nc = await connect({ servers: cluster.urls });
    try {
      const log = pino({ level: "silent" });
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
});
