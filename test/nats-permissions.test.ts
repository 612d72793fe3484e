// The NATS users as deployed: nats-server runs deploy/nats/accounts.conf (the
// file Kubernetes and compose both use) with the passwords the Kubernetes
// servers get, and the three services run as real processes, each with the
// user, password and inbox its Deployment gives it. They must do their whole
// job through those permissions, and each user must be refused, by the
// server, what its service never does.

import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPermissionViolation } from "../internal/nats/jetstream-codes.js";
import { STATE_BUCKET, STREAM_NAME, TOPOLOGY_BUCKET } from "../internal/nats/topology.js";
import { StreamChannelHistory } from "../internal/nats/channel-history.js";
import { consumerName } from "../internal/nats/partition-consumer.js";
import { StreamStoredNumbers } from "../internal/nats/stored-numbers.js";
import { StreamParkedMessages } from "../internal/nats/parked-messages.js";
import { ChannelStateStore } from "../internal/nats/channel-state-store.js";
import { NatsServer } from "../internal/testing/nats-server.js";
import { ServiceProcess, type ServiceName } from "../internal/testing/service-process.js";
import { runLaunch } from "../scripts/launch/launch.js";
import { containerEnvironment, loadKustomization, ROOT, type EnvContainer, type K8sObject } from "./deploy/manifests.js";
import { FAST_FAILOVER_ENV } from "./rockets-system.js";
import { bearer, TEST_KEYS } from "../internal/testing/api-keys.js";

interface Workload extends K8sObject {
  spec: { template: { spec: { containers: Array<EnvContainer & { name: string }> } } };
}

const objects = loadKustomization().map((m) => m.object);
const workload = (kind: string, name: string): Workload => objects.find((o) => o.kind === kind && o.metadata.name === name) as Workload;

/** What the NATS servers' containers get: every user's password. */
const serverEnv = containerEnvironment(objects, workload("StatefulSet", "nats").spec.template.spec.containers.find((c) => c.name === "nats")!, "nats-0");

/** A service's NATS credentials and inbox, as its Deployment sets them. */
function natsEnv(service: ServiceName): { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string } {
  const env = containerEnvironment(objects, workload("Deployment", service).spec.template.spec.containers[0]!, `${service}-0`);
  return { NATS_USER: env["NATS_USER"]!, NATS_PASSWORD: env["NATS_PASSWORD"]!, NATS_INBOX_PREFIX: env["NATS_INBOX_PREFIX"]! };
}

const admin = (() => {
  const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name === "nats-admin-credentials") as unknown as { data: Record<string, string> };
  const decode = (k: string) => Buffer.from(secret.data[k]!, "base64").toString();
  return { user: decode("NATS_USER"), pass: decode("NATS_PASSWORD") };
})();

const log = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once the server has refused `attempt` for this user's permissions; fails on success or any other error. */
async function refused(attempt: Promise<unknown>): Promise<void> {
  try {
    await attempt;
  } catch (err) {
    if (isPermissionViolation(err)) return;
    throw new Error(`expected a permissions violation, got ${String(err)}`, { cause: err });
  }
  throw new Error("expected a permissions violation, but the server allowed it");
}

/** True when the server refuses a subscription to `subject` (the client closes it with the violation). */
async function subscriptionRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  const sub = nc.subscribe(subject);
  const outcome = await Promise.race([sub.closed, sleep(2000).then(() => "still open" as const)]);
  if (outcome === "still open") sub.unsubscribe();
  return outcome instanceof Error && isPermissionViolation(outcome);
}

describe("NATS users and permissions (deploy/nats/accounts.conf) against a real server", () => {
  let nats: NatsServer;
  const services: ServiceProcess[] = [];
  const clients: NatsConnection[] = [];
  let ingest: ServiceProcess;
  let api: ServiceProcess;

  const connectAs = async (service: ServiceName): Promise<NatsConnection> => {
    const env = natsEnv(service);
    const nc = await connect({ servers: nats.url, user: env.NATS_USER, pass: env.NATS_PASSWORD, inboxPrefix: env.NATS_INBOX_PREFIX });
    clients.push(nc);
    return nc;
  };

  beforeAll(async () => {
    nats = await NatsServer.start({ include: [join(ROOT, "deploy", "nats", "accounts.conf")], env: serverEnv });
    const options = (service: ServiceName, extra: Record<string, string> = {}) => ({
      natsUrl: nats.url,
      env: { ...FAST_FAILOVER_ENV, PARTITIONS: "4", ...natsEnv(service), ...extra },
    });
    // Ingest first, on an empty NATS: it may not create the stream, and must wait for the sequencer.
    ingest = await ServiceProcess.spawn("ingest", options("ingest"));
    services.push(ingest);
    await ingest.waitForLog(/waiting for the sequencer, which provisions the deployment/, 20_000);
    services.push(await ServiceProcess.start("sequencer", options("sequencer", { INSTANCE_ID: "seq-1" })));
    await ingest.waitReady();
    api = await ServiceProcess.start("api", options("api"));
    services.push(api);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.map((nc) => nc.close()));
    await Promise.all(services.map((s) => s.stop("SIGTERM", 5000)));
    await nats?.dispose();
  });

  it("runs the whole system, each service as its own user: ordered state, a rocket's history, a 409 for a changed resend", async () => {
    const result = await runLaunch({
      url: `${ingest.url}/messages`,
      maxMessages: 600,
      rockets: 20,
      seed: 1515,
      duplicateRate: 0.1,
      reorderWindow: 20,
      concurrency: 4,
      verifyUrl: api.url,
      verifyTimeoutMs: 30_000,
      key: TEST_KEYS.operator,
    });
    expect(result.verify?.ok, result.mismatches.map((m) => m.problems.join("; ")).join("\n")).toBe(true);

    const [channel] = [...result.expected.keys()];
    const history = await fetch(`${api.url}/rockets/${channel}/events`, { headers: bearer(TEST_KEYS.reader) });
    expect(history.status).toBe(200);
    const body = (await history.json()) as { total: number; lastApplied: number };
    expect(body.total).toBeGreaterThan(0);
    expect(body.total).toBe(body.lastApplied);

    // Answering a changed resend reads the stored message back (STREAM.MSG.GET on the events stream).
    const changed = {
      metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketLaunched" },
      message: { type: "Not-The-Stored-One", launchSpeed: 1, mission: "NONE" },
    };
    const conflict = await fetch(`${ingest.url}/messages`, { method: "POST", body: JSON.stringify(changed), headers: bearer(TEST_KEYS.writer) });
    expect(conflict.status).toBe(409);

    // The server refused nothing the services did, but ingest's creation attempts while it waited.
    const violations = nats
      .logs()
      .split("\n")
      .filter((line) => /Violation/.test(line));
    const unexpected = violations.filter((line) => !/user:ingest" - Publish Violation - Subject "\$JS\.API\.STREAM\.CREATE\./.test(line));
    expect(unexpected).toEqual([]);
  }, 90_000);

  it("refuses ingest any write or watch of the state, other inboxes, named consumers and deletes; it may read one state entry", async () => {
    const nc = await connectAs("ingest");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await refused(js.publish(`$KV.${STATE_BUCKET}.some-channel`, "{}"));
    const state = await new Kvm(js).open(STATE_BUCKET, { allow_direct: true });
    await refused(state.put("some-channel", "{}"));
    // What a late resend's check reads: one channel's entry, by key, and that channel's stored messages.
    expect(await state.get("no-such-channel")).toBeNull();
    const launch = {
      metadata: { channel: "permission-check", messageNumber: 1, messageTime: "2022-02-02T19:39:05Z", messageType: "RocketLaunched" },
      message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
    };
    const seq = (await js.publish("rockets.events.0.permission-check", JSON.stringify(launch))).seq;
    const numbers = new StreamStoredNumbers(state, new StreamChannelHistory(nc, jsm, { maxMessages: 100, fetchTimeoutMs: 2000 }, log, natsEnv("ingest").NATS_INBOX_PREFIX));
    // The running sequencer applies it; ingest reads that back.
    await expect.poll(() => numbers.appliedThrough("permission-check"), { timeout: 5000 }).toBe(1);
    expect(await numbers.firstStored("permission-check", 1)).toEqual({ seq, message: launch });
    await refused(jsm.streams.getMessage(`KV_${STATE_BUCKET}`, { last_by_subj: `$KV.${STATE_BUCKET}.>` }));
    await refused(jsm.direct.getMessage(`KV_${STATE_BUCKET}`, { seq: 1 }));
    await refused(jsm.consumers.add(`KV_${STATE_BUCKET}`, { name: "peek", filter_subject: `$KV.${STATE_BUCKET}.>` }));
    await refused(jsm.consumers.add(STREAM_NAME, { name: "peek", filter_subject: "rockets.events.>" }));
    await refused(jsm.streams.delete(STREAM_NAME));
    await refused(jsm.streams.purge(STREAM_NAME));
    await refused(jsm.streams.delete(`KV_${STATE_BUCKET}`));
    await refused(jsm.consumers.delete(STREAM_NAME, consumerName(0)));
    await refused(js.publish(`$KV.${TOPOLOGY_BUCKET}.partitions`, "1"));
    expect(await subscriptionRefused(nc, "_INBOX_api.>"), "the API's inbox: the state it watches").toBe(true);
    expect(await subscriptionRefused(nc, "_INBOX.>")).toBe(true);
    expect(await subscriptionRefused(nc, "rockets.events.>")).toBe(true);
  });

  it("refuses the API any publish of an event or write of a key, the sequencer's consumers, and deletes", async () => {
    const nc = await connectAs("api");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await refused(js.publish("rockets.events.0.forged", "{}"));
    await refused(js.publish(`$KV.${STATE_BUCKET}.some-channel`, "{}"));
    await refused((await new Kvm(js).open(STATE_BUCKET)).put("some-channel", "{}"));
    await refused(js.publish(`$KV.${TOPOLOGY_BUCKET}.partitions`, "1"));
    await refused(jsm.consumers.delete(STREAM_NAME, consumerName(0)));
    await refused(jsm.consumers.add(STREAM_NAME, { durable_name: consumerName(0), ack_policy: AckPolicy.None }));
    // The one creation it may make is of an ephemeral consumer: the server refuses, on that
    // subject, a configuration naming a consumer (which could otherwise replace the sequencer's).
    const create = async (naming: object, action: string) => {
      const config = { ...naming, ack_policy: "none", deliver_subject: "_INBOX_api.x", filter_subject: "rockets.events.>", inactive_threshold: 1e9 };
      const request = { stream_name: STREAM_NAME, action, config };
      return (await nc.request(`$JS.API.CONSUMER.CREATE.${STREAM_NAME}`, JSON.stringify(request))).json<{ error?: { code: number } }>();
    };
    expect((await create({}, "create")).error, "the same request without a name is accepted").toBeUndefined();
    for (const naming of [{ durable_name: consumerName(0) }, { name: consumerName(0) }]) {
      for (const action of ["create", "update", ""]) expect((await create(naming, action)).error, `${JSON.stringify(naming)} ${action}`).toBeDefined();
    }
    await refused(jsm.streams.delete(STREAM_NAME));
    await refused(jsm.streams.delete(`KV_${STATE_BUCKET}`));
    await refused(jsm.streams.purge(`KV_${STATE_BUCKET}`));
    expect(await subscriptionRefused(nc, "_INBOX_ingest.>")).toBe(true);
    expect(await subscriptionRefused(nc, "_INBOX_sequencer.>")).toBe(true);
  });

  it("pulls nothing from the sequencer's consumers as the API", async () => {
    const nc = await connectAs("api");
    const consumer = await jetstream(nc).consumers.get(STREAM_NAME, consumerName(0)).catch((err: unknown) => err);
    // Either the lookup (CONSUMER.INFO) or the pull (CONSUMER.MSG.NEXT) is refused.
    if (consumer instanceof Error) {
      expect(isPermissionViolation(consumer), String(consumer)).toBe(true);
      return;
    }
    await refused((consumer as { next(o: { expires: number }): Promise<unknown> }).next({ expires: 1000 }));
  });

  it("refuses the sequencer any publish of an event, and deleting or purging the stream or a bucket", async () => {
    const nc = await connectAs("sequencer");
    const js = jetstream(nc);
    const jsm: JetStreamManager = await jetstreamManager(nc);
    await refused(js.publish("rockets.events.0.forged", "{}"));
    await refused(jsm.streams.delete(STREAM_NAME));
    await refused(jsm.streams.purge(STREAM_NAME));
    await refused(jsm.streams.delete(`KV_${STATE_BUCKET}`));
    await refused(jsm.consumers.delete(STREAM_NAME, consumerName(0)));
    expect(await subscriptionRefused(nc, "_INBOX_api.>")).toBe(true);
    // Its right to create the stream cannot change the stream that exists: the server refuses another configuration.
    const before = (await jsm.streams.info(STREAM_NAME)).config;
    await expect(jsm.streams.add({ ...before, max_age: before.max_age + 1_000_000_000 })).rejects.toThrow(/already in use/);
    expect((await jsm.streams.info(STREAM_NAME)).config.max_age).toBe(before.max_age);
  });

  it("lets the sequencer read a rocket's parked messages back and scan the state bucket for never-launched rockets", async () => {
    const sequencerViolations = () =>
      nats
        .logs()
        .split("\n")
        .filter((line) => /user:sequencer" - .*Violation/.test(line));
    const before = sequencerViolations().length;
    const nc = await connectAs("sequencer");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const parked = { metadata: { channel: "parked-check", messageNumber: 2, messageTime: "2022-02-02T19:39:05Z", messageType: "RocketSpeedIncreased" }, message: { by: 5 } };
    // Stored as ingest stores events (the sequencer may not publish one).
    const ingestNc = await connectAs("ingest");
    const seq = (await jetstream(ingestNc).publish("rockets.events.0.parked-check", JSON.stringify(parked))).seq;
    const reader = new StreamParkedMessages(js, jsm, 2000);
    const read: number[] = [];
    await reader.read(0, "parked-check", 1, (m) => read.push(m.seq));
    expect(read).toEqual([seq]);
    expect(await reader.census(0, "parked-check")).toMatchObject({ count: 1 });
    expect(await reader.firstSeq(0, "parked-check", 1)).toBe(seq);
    expect((await reader.held()).firstSeq).toBeGreaterThanOrEqual(1);
    const store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET), { js, jsm });
    await store.scanGaps(() => undefined);
    await store.load("parked-check", { latest: true });
    expect(sequencerViolations().slice(before)).toEqual([]);
  });

  it("lets the operators' admin user do what the services may not (so the refusals above are permissions, not a broken server)", async () => {
    const nc = await connect({ servers: nats.url, user: admin.user, pass: admin.pass });
    clients.push(nc);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(STREAM_NAME)).state.messages).toBeGreaterThan(0);
    // The sequencer's consumer is intact, as the sequencer made it, after everything the others tried.
    const sequencerConsumer = await jsm.consumers.info(STREAM_NAME, consumerName(0));
    expect(sequencerConsumer.config.ack_policy).toBe(AckPolicy.Explicit);
    expect(sequencerConsumer.config.filter_subject).toBe("rockets.events.0.*");
    await expect(connect({ servers: nats.url, user: natsEnv("api").NATS_USER, pass: admin.pass, reconnect: false })).rejects.toThrow(/authorization/i);
  });
});
