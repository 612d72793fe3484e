// The NATS accounts and users as deployed: nats-server runs
// deploy/nats/accounts.conf (the file Kubernetes, compose, npm start and npm
// run cluster all use) with the passwords the Kubernetes servers get.
//
// First, the three services run as real processes, each with the user,
// password and inbox its Deployment gives it, and must do their whole job
// through those rights. Then, on a quiet deployment (nothing running but the
// server, so that any write would show), ingest's and the API's credentials
// try every way to cause a write that the server offers a client: consumer
// creation of every kind (push consumers delivering into every bucket's and
// the events stream's subjects, with and without someone listening there;
// pull, named and durable ones), direct publishes, reply subjects naming a
// bucket or the events stream on every request they may make, direct gets
// with odd headers, stream and consumer administration. Each must be refused
// by the server, and no stream or bucket may gain a message, a revision or a
// consumer. docs/security.md's threat model names these tests row by row.

import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPermissionViolation } from "../internal/nats/jetstream-codes.js";
import { LEASE_BUCKET, provisionTopology, STATE_BUCKET, STATE_CHANGES_PREFIX, STREAM_NAME, TOPOLOGY_BUCKET } from "../internal/nats/topology.js";
import { StreamChannelHistory } from "../internal/nats/channel-history.js";
import { consumerName } from "../internal/nats/partition-consumer.js";
import { StreamStoredNumbers } from "../internal/nats/stored-numbers.js";
import { StreamParkedMessages } from "../internal/nats/parked-messages.js";
import { ChannelStateStore, keyForChannel } from "../internal/nats/channel-state-store.js";
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

/** The streams of the deployment: the events and the three buckets. */
const STREAMS = [STREAM_NAME, `KV_${STATE_BUCKET}`, `KV_${LEASE_BUCKET}`, `KV_${TOPOLOGY_BUCKET}`];

/** What every service reads at start: the deployment's shape. */
const SHAPE = [
  "$JS.API.INFO",
  `$JS.API.STREAM.INFO.${STREAM_NAME}`,
  `$JS.API.STREAM.INFO.KV_${TOPOLOGY_BUCKET}`,
  `$JS.API.STREAM.INFO.KV_${STATE_BUCKET}`,
  `$JS.API.STREAM.INFO.KV_${LEASE_BUCKET}`,
  `$JS.API.STREAM.MSG.GET.KV_${TOPOLOGY_BUCKET}`,
];

/**
 * Every subject ingest's and the API's accounts reach ROCKETS by: services
 * they import (a request there is answered in their own account) and, for the
 * API, the stream of republished state entries. Nothing else they send can
 * reach the stream or a bucket. Every one is a read, but ingest's events.
 */
const IMPORTS = {
  ingest: {
    service: [...SHAPE, "rockets.events.>", `$JS.API.DIRECT.GET.${STREAM_NAME}`, `$JS.API.STREAM.MSG.GET.${STREAM_NAME}`, `$JS.API.DIRECT.GET.KV_${STATE_BUCKET}.>`],
    stream: [] as string[],
  },
  api: {
    service: [
      ...SHAPE,
      `$JS.API.DIRECT.GET.${STREAM_NAME}`,
      `$JS.API.STREAM.MSG.GET.${STREAM_NAME}`,
      `$JS.API.DIRECT.GET.KV_${STATE_BUCKET}`,
      `$JS.API.STREAM.MSG.GET.KV_${STATE_BUCKET}`,
    ],
    stream: [`${STATE_CHANGES_PREFIX}.>`],
  },
};

type Attacker = "ingest" | "api";
const ACCOUNT: Record<Attacker, string> = { ingest: "INGEST", api: "API" };

/** A stored event's body, as ingest stores them. */
function launch(channel: string) {
  return {
    metadata: { channel, messageNumber: 1, messageTime: "2022-02-02T19:39:05Z", messageType: "RocketLaunched" },
    message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" },
  };
}

describe("the services through their NATS users (deploy/nats/accounts.conf) against a real server", () => {
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
    // The events stream's consumers are the sequencer's pull consumers: no push consumer was made for a read.
    const adminNc = await connect({ servers: nats.url, user: admin.user, pass: admin.pass });
    clients.push(adminNc);
    const consumers = await (await jetstreamManager(adminNc)).consumers.list(STREAM_NAME).next();
    expect(consumers.map((c) => c.name)).toEqual(expect.arrayContaining([0, 1, 2, 3].map(consumerName)));
    expect(consumers.filter((c) => c.config.deliver_subject !== undefined)).toEqual([]);
  }, 90_000);

  it("lets ingest read what a late resend's check reads: one channel's state entry by key and its stored messages", async () => {
    const nc = await connectAs("ingest");
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const state = await new Kvm(js).open(STATE_BUCKET, { allow_direct: true });
    expect(await state.get("no-such-channel")).toBeNull();
    const stored = launch("permission-check");
    const seq = (await js.publish("rockets.events.0.permission-check", JSON.stringify(stored))).seq;
    const numbers = new StreamStoredNumbers(state, new StreamChannelHistory(nc, jsm, { maxMessages: 100, fetchTimeoutMs: 2000 }, log, natsEnv("ingest").NATS_INBOX_PREFIX));
    // The running sequencer applies it; ingest reads that back.
    await expect.poll(() => numbers.appliedThrough("permission-check"), { timeout: 5000 }).toBe(1);
    expect(await numbers.firstStored("permission-check", 1)).toEqual({ seq, message: stored });
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
    await refused(jsm.streams.update(`KV_${STATE_BUCKET}`, { republish: { src: `$KV.${STATE_BUCKET}.>`, dest: "rockets.events.0.forged" } }));
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

/** Each stream's last sequence, message count and consumers' names. */
interface Snapshot {
  [stream: string]: { lastSeq: number; messages: number; consumers: string[] };
}

describe("a leaked ingest or API password cannot write state (deploy/nats/accounts.conf, a quiet deployment on a real server)", () => {
  let nats: NatsServer;
  const clients: NatsConnection[] = [];
  let adminJsm: JetStreamManager;
  let baseline: Snapshot;
  /** Events ingest itself stored during the attempts (its job): the one growth the events stream may show. */
  const ingestEvents: string[] = [];
  const channel = "stored-channel";

  const connectAs = async (service: ServiceName): Promise<NatsConnection> => {
    const env = natsEnv(service);
    const nc = await connect({ servers: nats.url, user: env.NATS_USER, pass: env.NATS_PASSWORD, inboxPrefix: env.NATS_INBOX_PREFIX });
    clients.push(nc);
    return nc;
  };

  async function snapshot(): Promise<Snapshot> {
    const result: Snapshot = {};
    for (const stream of STREAMS) {
      const info = await adminJsm.streams.info(stream);
      const consumers = (await adminJsm.consumers.list(stream).next()).map((c) => c.name).sort();
      result[stream] = { lastSeq: info.state.last_seq, messages: info.state.messages, consumers };
    }
    return result;
  }

  /** Every stream and bucket as it was before any attempt, but for the events ingest itself stored meanwhile. */
  async function expectNothingWritten(): Promise<void> {
    await sleep(500);
    const after = await snapshot();
    const events = after[STREAM_NAME]!;
    expect({ ...after, [STREAM_NAME]: { ...events, lastSeq: events.lastSeq - ingestEvents.length, messages: events.messages - ingestEvents.length } }).toEqual(baseline);
  }

  /**
   * Subjects a delivery or an answer could be aimed at: in every bucket a key
   * that exists and one that does not (the topology's two records), and in
   * the events stream a stored channel's subject and a new one.
   */
  const targets = (tag: string) => [
    `$KV.${STATE_BUCKET}.${keyForChannel(channel)}`,
    `$KV.${STATE_BUCKET}.${tag}`,
    `$KV.${LEASE_BUCKET}.partition-0`,
    `$KV.${LEASE_BUCKET}.${tag}`,
    `$KV.${TOPOLOGY_BUCKET}.partitions`,
    `$KV.${TOPOLOGY_BUCKET}.replicas`,
    `rockets.events.0.${channel}`,
    `rockets.events.3.${tag}`,
  ];

  beforeAll(async () => {
    nats = await NatsServer.start({ include: [join(ROOT, "deploy", "nats", "accounts.conf")], env: serverEnv });
    const adminNc = await connect({ servers: nats.url, user: admin.user, pass: admin.pass });
    clients.push(adminNc);
    // A deployment as the sequencer provisions it, with a stored event, a state entry, a lease and a partition's consumer.
    const sequencer = await connectAs("sequencer");
    const provisioned = await provisionTopology(sequencer, { partitions: 4, replicas: 1, duplicateWindowSeconds: 120 }, log);
    const ingestNc = await connectAs("ingest");
    await jetstream(ingestNc).publish(`rockets.events.0.${channel}`, JSON.stringify(launch(channel)));
    await (await provisioned.kvm.open(STATE_BUCKET)).put(keyForChannel(channel), "{}");
    await (await provisioned.kvm.open(LEASE_BUCKET)).put("partition-0", "seq-1");
    await provisioned.jsm.consumers.add(STREAM_NAME, { durable_name: consumerName(0), filter_subject: "rockets.events.0.*", ack_policy: AckPolicy.Explicit });
    adminJsm = await jetstreamManager(adminNc);
    baseline = await snapshot();
  }, 30_000);

  afterAll(async () => {
    await Promise.all(clients.map((nc) => nc.close()));
    await nats?.dispose();
  });

  it("confines ingest and the API each to an account with no JetStream that reaches ROCKETS only by reads (and ingest's events)", async () => {
    for (const service of ["ingest", "api"] as const) {
      const detail = (await nats.monitor<{ account_detail: { jetstream_enabled: boolean; imports: Array<{ subject: string; account: string; type: string }> } }>(`/accountz?acc=${ACCOUNT[service]}`))
        .account_detail;
      expect(detail.jetstream_enabled, service).toBe(false);
      const fromRockets = detail.imports.filter((i) => i.account === "ROCKETS");
      expect(fromRockets.filter((i) => i.type === "service").map((i) => i.subject).sort(), service).toEqual([...IMPORTS[service].service].sort());
      expect(fromRockets.filter((i) => i.type === "stream").map((i) => i.subject).sort(), service).toEqual([...IMPORTS[service].stream].sort());
      // The server's own imports (from SYS) are its monitoring requests about the account itself.
      for (const i of detail.imports.filter((i) => i.account !== "ROCKETS")) expect(i.subject, service).toMatch(new RegExp(`^\\$SYS\\.REQ\\.(ACCOUNT|USER)\\.${ACCOUNT[service]}\\.`));
    }
  });

  for (const attacker of ["api", "ingest"] as const) {
    describe(`as ${attacker}`, () => {
      it("is refused every consumer: push consumers delivering into every bucket's and the events stream's subjects, with and without a listener there; pull, named and durable ones; on every stream", async () => {
        const nc = await connectAs(attacker);
        // A listener on every subject of ROCKETS, the most interest anyone could arrange for a push consumer's deliveries.
        const adminNc = await connect({ servers: nats.url, user: admin.user, pass: admin.pass });
        clients.push(adminNc);
        const delivered: string[] = [];
        for (const listening of [false, true]) {
          const listener = listening ? adminNc.subscribe(">", { callback: (_err, msg) => void (msg.subject.includes(`${attacker}-attack`) && delivered.push(msg.subject)) }) : undefined;
          if (listener) await adminNc.flush();
          for (const stream of STREAMS) {
            const filter = stream === STREAM_NAME ? "rockets.events.>" : `$KV.${stream.slice("KV_".length)}.>`;
            for (const deliver of [...targets(`${attacker}-attack`), undefined]) {
              const config = { ack_policy: "none", deliver_policy: "all", filter_subject: filter, ...(deliver && { deliver_subject: deliver }) };
              const request = (extra: object) => JSON.stringify({ stream_name: stream, config: { ...config, ...extra } });
              await refused(nc.request(`$JS.API.CONSUMER.CREATE.${stream}`, request({})));
              await refused(nc.request(`$JS.API.CONSUMER.CREATE.${stream}.atk`, request({ name: "atk" })));
              await refused(nc.request(`$JS.API.CONSUMER.CREATE.${stream}.atk.${filter}`, request({ name: "atk" })));
              await refused(nc.request(`$JS.API.CONSUMER.DURABLE.CREATE.${stream}.atk`, request({ durable_name: "atk" })));
            }
          }
          // The sequencer's own durable, by name: neither replaced nor updated.
          for (const action of ["create", "update", ""]) {
            const request = JSON.stringify({ stream_name: STREAM_NAME, action, config: { durable_name: consumerName(0), ack_policy: "none", deliver_subject: `$KV.${STATE_BUCKET}.${attacker}-attack` } });
            await refused(nc.request(`$JS.API.CONSUMER.CREATE.${STREAM_NAME}.${consumerName(0)}`, request));
            await refused(nc.request(`$JS.API.CONSUMER.DURABLE.CREATE.${STREAM_NAME}.${consumerName(0)}`, request));
          }
          listener?.unsubscribe();
        }
        await sleep(500);
        expect(delivered).toEqual([]);
        await expectNothingWritten();
      }, 60_000);

      it("is refused every direct write: a bucket's subjects, another's event (the API), the sequencer's acks and pulls, and any change to a stream or consumer", async () => {
        const nc = await connectAs(attacker);
        const jsm = await jetstreamManager(nc);
        for (const subject of targets(`${attacker}-attack`)) {
          if (attacker === "ingest" && subject.startsWith("rockets.events.")) continue;
          await refused(jetstream(nc).publish(subject, "{}"));
        }
        await refused(nc.request(`$JS.ACK.${STREAM_NAME}.${consumerName(0)}.1.1.1.0.0`, "+ACK"));
        await refused(nc.request(`$JS.FC.${STREAM_NAME}.x.1`, ""));
        await refused(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${STREAM_NAME}.${consumerName(0)}`, JSON.stringify({ batch: 1 })));
        await refused(jsm.consumers.delete(STREAM_NAME, consumerName(0)));
        for (const stream of STREAMS) {
          await refused(jsm.streams.delete(stream));
          await refused(jsm.streams.purge(stream));
          await refused(jsm.streams.update(stream, { max_msgs: 1 }));
          await refused(jsm.streams.deleteMessage(stream, 1));
          await refused(nc.request(`$JS.API.STREAM.CREATE.${stream}`, JSON.stringify({ name: stream, subjects: ["anything.>"] })));
        }
        await expectNothingWritten();
      });

      it("names bucket and event subjects as the reply subject of every request it may make, with odd headers and bodies: every answer stays in its own account", async () => {
        const nc = await connectAs(attacker);
        const odd = (): MsgHdrs => {
          const h = headers();
          for (const [k, v] of [
            ["Nats-Rollup", "all"],
            ["KV-Operation", "PURGE"],
            ["Nats-TTL", "1s"],
            ["Nats-Msg-Id", "attack"],
            ["Nats-Expected-Last-Sequence", "0"],
            ["Nats-Required-Api-Level", "0"],
          ])
            h.set(k!, v!);
          return h;
        };
        const bodies = ["", "{}", "not json", JSON.stringify({ seq: 1 }), JSON.stringify({ seq: 1, batch: 10, next_by_subj: ">" }), JSON.stringify({ last_by_subj: `$KV.${TOPOLOGY_BUCKET}.partitions` }), JSON.stringify({ multi_last: ["$KV.>"] })];
        const requests = [...IMPORTS[attacker].service.filter((s) => !s.endsWith(">")), ...(attacker === "ingest" ? [`$JS.API.DIRECT.GET.KV_${STATE_BUCKET}.$KV.${STATE_BUCKET}.${keyForChannel(channel)}`] : [])];
        for (const subject of requests) {
          for (const reply of targets(`${attacker}-attack`)) {
            for (const body of bodies) {
              nc.publish(subject, body, { reply });
              nc.publish(subject, body, { reply, headers: odd() });
            }
          }
        }
        if (attacker === "ingest") {
          for (const reply of targets("ingest-attack")) {
            // Its own publishes (its job: each stores an event) with a bucket or another event as the reply subject: the ack stays in its account.
            const subject = `rockets.events.1.ingest-own-${ingestEvents.length}`;
            ingestEvents.push(subject);
            nc.publish(subject, JSON.stringify(launch(`ingest-own-${ingestEvents.length}`)), { reply });
            // With headers asking the stream to roll up (purge) or expire what it holds: the events stream allows neither and stores nothing.
            nc.publish(`rockets.events.1.ingest-odd`, "{}", { reply, headers: odd() });
          }
        }
        await nc.flush();
        // Answers travel back through the server; give them time to land anywhere they could.
        await sleep(1000);
        await expectNothingWritten();
      });

      it("is refused subscriptions to the data and to other services' replies", async () => {
        const nc = await connectAs(attacker);
        for (const subject of [">", "$KV.>", "rockets.events.>", "_INBOX.>", "_INBOX_sequencer.>", `_INBOX_${attacker === "api" ? "ingest" : "api"}.>`, "$JS.>"]) {
          expect(await subscriptionRefused(nc, subject), subject).toBe(true);
        }
        if (attacker === "ingest") expect(await subscriptionRefused(nc, `${STATE_CHANGES_PREFIX}.>`)).toBe(true);
      });
    });
  }

  it("after all of that, no stream or bucket gained a message, a revision or a consumer (but ingest's own events)", async () => {
    await expectNothingWritten();
    // The events that did come are the ones ingest published, as it published them.
    for (const [i, subject] of ingestEvents.entries()) {
      const stored = await adminJsm.streams.getMessage(STREAM_NAME, { seq: baseline[STREAM_NAME]!.lastSeq + 1 + i });
      expect(stored?.subject).toBe(subject);
    }
  });

  it("bounds the consumers ingest and the API can hold at zero: the server runs no JetStream in their accounts", async () => {
    const jsz = await nats.monitor<{ account_details?: Array<{ name: string }> }>("/jsz?accounts=true");
    expect((jsz.account_details ?? []).map((a) => a.name)).toEqual(["ROCKETS"]);
    for (const service of ["ingest", "api"] as const) {
      const detail = (await nats.monitor<{ account_detail: { jetstream_enabled: boolean } }>(`/accountz?acc=${ACCOUNT[service]}`)).account_detail;
      expect(detail.jetstream_enabled).toBe(false);
    }
  });

  it("leaves the sequencer's user able to create a push consumer delivering into another stream's subjects (nats-server issue 8274): what docs/security.md leaves open", async () => {
    const nc = await connectAs("sequencer");
    const name = "open-issue";
    const created = await nc.request(
      `$JS.API.CONSUMER.CREATE.KV_${LEASE_BUCKET}.${name}.$KV.${LEASE_BUCKET}.>`,
      JSON.stringify({ stream_name: `KV_${LEASE_BUCKET}`, config: { name, deliver_subject: `rockets.events.0.${channel}`, ack_policy: "none", filter_subject: `$KV.${LEASE_BUCKET}.>`, inactive_threshold: 1e9 } }),
    );
    expect(created.json<{ error?: unknown; name?: string }>()).toMatchObject({ name });
  });
});
