// A sequencer started while its NATS cluster has no JetStream quorum (two of
// three nodes down, as in the middle of a failover) keeps retrying instead of
// exiting, and becomes ready and takes its partitions once the nodes return.

import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTopology } from "../internal/nats/topology.js";
import { NatsCluster } from "../internal/testing/nats-server.js";
import { ServiceProcess } from "../internal/testing/service-process.js";
import { FAST_FAILOVER_ENV, sleep } from "./rockets-system.js";

describe("a sequencer started during a NATS failover", () => {
  let cluster: NatsCluster;
  const started: ServiceProcess[] = [];
  beforeAll(async () => {
    cluster = await NatsCluster.start(3);
    const nc = await connect({ servers: cluster.urls });
    await provisionTopology(nc, { partitions: Number(FAST_FAILOVER_ENV.PARTITIONS), replicas: 3 }, pino({ level: "silent" }));
    await nc.close();
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop("SIGKILL")));
    await cluster?.dispose();
  });

  it("retries until JetStream answers again, then becomes ready owning every partition", async () => {
    const [, second, third] = cluster.servers;
    await Promise.all([second!.stop("SIGKILL"), third!.stop("SIGKILL")]);
    // Started against the one node left: it can connect, but nothing JetStream answers.
    const starting = ServiceProcess.start("sequencer", {
      natsUrl: cluster.urls,
      env: { ...FAST_FAILOVER_ENV, INSTANCE_ID: "seq-during-failover", LOG_LEVEL: "info" },
    }).then((s) => {
      started.push(s);
      return s;
    });
    let exited = false;
    void starting.catch(() => (exited = true));
    await sleep(6000);
    expect(exited, "the sequencer exited instead of retrying").toBe(false);

    await Promise.all([second!.launch(), third!.launch()]);
    const sequencer = await starting;
    const deadline = Date.now() + 20_000;
    let partitions: number[] = [];
    while (Date.now() < deadline) {
      partitions = await sequencer.ownedPartitions();
      if (partitions.length === Number(FAST_FAILOVER_ENV.PARTITIONS)) break;
      await sleep(200);
    }
    expect(partitions).toEqual([...Array(Number(FAST_FAILOVER_ENV.PARTITIONS)).keys()]);
    expect(sequencer.logs()).toMatch(/failed, retrying/);
  }, 90_000);
});
