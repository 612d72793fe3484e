// Each service as users run it, started where it cannot work: without NATS
// it says so at once (where, and why) and /readyz tells the same; with a
// configuration it cannot take it exits 78 (EX_CONFIG), saying what to
// change and without a stack trace, so that supervisors do not restart it.

import { afterAll, describe, expect, it } from "vitest";
import { freePort, NatsServer } from "../internal/testing/nats-server.js";
import { ServiceProcess, type ServiceName } from "../internal/testing/service-process.js";

const EX_CONFIG = 78;
const SERVICES: ServiceName[] = ["ingest", "sequencer", "api"];
const running: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop("SIGKILL")));
});

async function spawn(name: ServiceName, natsUrl: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const service = await ServiceProcess.spawn(name, { natsUrl, env });
  running.push(service);
  return service;
}

describe("a service that cannot reach NATS", () => {
  it.each(SERVICES)("%s says so at once, with the URL and the error, and /readyz says why", async (name) => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const service = await spawn(name, url);
    const line = (await service.waitForLog(/^.*"msg":"cannot reach nats; retrying until it answers".*$/m, 15_000))[0];
    expect(line).toContain(`"servers":"${url}"`);
    expect(line).toMatch(/"error":"[^"]*refused/i);

    const res = await fetch(`${service.url}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { reason: string }).reason).toMatch(new RegExp(`^cannot reach NATS at ${url}: .*refused.*retrying`, "i"));
    // Still trying, not exited.
    expect(service.running).toBe(true);
    expect(await service.stop("SIGTERM")).toBe(0);
  }, 30_000);
});

describe("a service with a configuration it cannot take", () => {
  let nats: NatsServer;
  afterAll(() => nats?.dispose());

  it.each(SERVICES)("%s exits 78 on an invalid variable, listing the problem", async (name) => {
    const service = await spawn(name, "nats://127.0.0.1:1", { PARTITIONS: "abc" });
    expect(await service.waitForExit(15_000)).toBe(EX_CONFIG);
    expect(service.logs()).toContain('PARTITIONS must be an integer from 1 to 1024, got "abc"');
  }, 30_000);

  it("exits 78 on a partition count that conflicts with the deployment's, naming both and no stack", async () => {
    nats = await NatsServer.start();
    const first = await ServiceProcess.start("ingest", { natsUrl: nats.url, env: { PARTITIONS: "4" } });
    running.push(first);
    const second = await spawn("sequencer", nats.url, { PARTITIONS: "8" });
    // Run as several workers, the primary passes a worker's 78 on.
    const workers = await spawn("ingest", nats.url, { PARTITIONS: "8", WORKERS: "2" });
    expect(await second.waitForExit(20_000)).toBe(EX_CONFIG);
    const logs = second.logs();
    expect(logs).toMatch(/"level":60.*"problem":"PARTITIONS=8 conflicts with this deployment's 4 partitions/);
    expect(logs).toContain("fix it and start again");
    expect(logs).not.toMatch(/"stack"/);
    expect(await workers.waitForExit(20_000)).toBe(EX_CONFIG);
    expect(await first.stop("SIGTERM")).toBe(0);
  }, 40_000);

  it("each exits 78 when STREAM_REPLICAS asks for more replicas than the servers can place", async () => {
    const single = await NatsServer.start();
    try {
      const services = await Promise.all(SERVICES.map((name) => spawn(name, single.url, { STREAM_REPLICAS: "3" })));
      for (const service of services) {
        expect(await service.waitForExit(30_000), service.name).toBe(EX_CONFIG);
        expect(service.logs()).toMatch(/"level":60.*"problem":"STREAM_REPLICAS=3 cannot be placed/);
        expect(service.logs()).not.toMatch(/"stack"/);
      }
    } finally {
      await single.dispose();
    }
  }, 60_000);
});
