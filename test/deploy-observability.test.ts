// The dashboard and the alert rules against a real Prometheus (Debian's)
// scraping the real services, which run against a real nats-server and have
// handled real traffic: every PromQL expression of the dashboard and of the
// rules must be valid, every dashboard expression must return data, and on
// this healthy system no alert condition may hold except the one that says
// the NATS exporter is missing (it is not available on this machine, so the
// exporter's metrics cannot have data here: those panels are listed below and
// checked for validity only). The compose healthchecks and the Kubernetes
// probe paths are run against the same services.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { freePort, NatsServer } from "../internal/testing/nats-server.js";
import { makeTraffic, Rng, shuffle, subjectOf } from "../internal/testing/rocket-traffic.js";
import { ServiceProcess, type ServiceName } from "../internal/testing/service-process.js";
import { readCompose } from "./deploy/compose.js";
import { readYaml, ROOT } from "./deploy/manifests.js";
import { bearer, TEST_KEYS } from "../internal/testing/api-keys.js";
import { scrape } from "../internal/testing/metrics.js";

const PROMETHEUS_DIR = join(ROOT, "deploy", "prometheus");
const DASHBOARD = join(ROOT, "deploy", "grafana", "dashboards", "rockets.json");
const PARTITIONS = 4;
/** What Grafana substitutes for $__rate_interval at this test's 1 s scrape interval is smaller; a minute covers the whole test. */
const RATE_INTERVAL = "1m";

/** Panels fed only by prometheus-nats-exporter, which cannot run here: valid, exempt from returning data. */
const EXPORTER_PANELS = [
  "Stream messages",
  "Consumer pending",
  "JetStream storage",
  "Servers healthy / JetStream enabled",
  "NATS messages /s",
  "NATS connections",
];
const EXPORTER_METRIC = /\b(jetstream_|gnatsd_)\w+/;
/** On a healthy system with no exporter, this is the only alert whose condition holds. */
const HOLDS_WITHOUT_EXPORTER = ["RocketsNatsJetStreamDown"];

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string; refId: string }>;
}
interface Rule {
  alert: string;
  expr: string;
}
interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

const dashboardTargets = (JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] }).panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr.replaceAll("$__rate_interval", RATE_INTERVAL) })),
);
const rules = readYaml<{ groups: Array<{ rules: Rule[] }> }>(join(PROMETHEUS_DIR, "rules", "rockets.rules.yml")).groups.flatMap((g) => g.rules);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prometheusInstalled(): void {
  if (spawnSync("prometheus", ["--version"]).error) {
    throw new Error("prometheus is not installed. Install Debian's: `sudo apt-get install -y prometheus` (scripts/prereqs.mjs does it for npm test).");
  }
}

describe("dashboard and alert rules on a real Prometheus scraping the running services", () => {
  let nats: NatsServer;
  const services = {} as Record<ServiceName, ServiceProcess>;
  let prometheus: ChildProcess | undefined;
  let prometheusOutput = "";
  let promUrl = "";
  let dir = "";
  let sent = { distinct: 0, deliveries: 0, channels: 0 };

  async function query(expr: string): Promise<QueryResult> {
    const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    return (await res.json()) as QueryResult;
  }

  async function waitFor(what: string, check: () => Promise<boolean>, state: () => string = () => "", timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${state()}\n${prometheusOutput.slice(-2000)}`);
      await sleep(250);
    }
  }

  async function metricSum(service: ServiceProcess, name: string, labels = ""): Promise<number> {
    const text = await scrape(service.url);
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  }

  /** Real traffic: rockets sent through ingest out of order and with resends, one invalid message, then reads. */
  async function sendTraffic(): Promise<void> {
    const traffic = makeTraffic({ channels: 6, perChannel: 40, seed: 2024 });
    const rng = new Rng(7);
    const messages = [...traffic.byChannel.values()].flat();
    const order = shuffle([...messages, ...messages.filter(() => rng.next() < 0.15)], rng);
    // What the stream delivers: each distinct message once (it deduplicates the resends), plus one late resend per channel published below.
    sent = { distinct: messages.length, deliveries: messages.length + traffic.byChannel.size, channels: traffic.byChannel.size };
    const post = async (body: unknown) =>
      fetch(`${services.ingest.url}/messages`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...bearer(TEST_KEYS.writer) } });
    // Spread over a few seconds, so that several scrapes see the counters move.
    for (let i = 0; i < order.length; i += 8) {
      const answers = await Promise.all(order.slice(i, i + 8).map(post));
      for (const a of answers) expect(a.status).toBe(202);
      await sleep(100);
    }
    expect((await post({ metadata: { channel: "not a channel" } })).status).toBe(400);

    // A resend after the stream's duplicate window: a different message id,
    // so it reaches the sequencer, which drops it as already applied.
    const nc: NatsConnection = await connect({ servers: nats.url });
    const js = jetstream(nc);
    for (const first of [...traffic.byChannel.values()].map((m) => m[0]!)) {
      await js.publish(subjectOf(first, PARTITIONS), JSON.stringify(first), { msgID: `late-resend:${first.metadata.channel}` });
    }
    await nc.close();

    // Each delivery counts once: applied, buffered behind a gap, or a duplicate (a resend, or a message a
    // launch's re-read of the stream applied before its own delivery came); every gap closed.
    let seen = "";
    await waitFor("the sequencer to take every message", async () => {
      let taken = 0;
      for (const outcome of ["applied", "buffered", "duplicate"]) {
        taken += await metricSum(services.sequencer, "rockets_sequencer_messages_total", `outcome="${outcome}"`);
      }
      const gaps = await metricSum(services.sequencer, "rockets_sequencer_open_gaps");
      seen = `${taken} of ${sent.deliveries} deliveries taken, ${gaps} gaps open`;
      return taken >= sent.deliveries && gaps === 0;
    }, () => seen);
    await waitFor("the API view to hold every rocket", async () => (await metricSum(services.api, "rockets_api_rockets_in_view")) >= sent.channels);
    // Reads spread over a few scrapes too.
    for (let round = 0; round < 12; round += 1) {
      for (const channel of [...traffic.byChannel.keys()].slice(0, 2)) {
        expect((await fetch(`${services.api.url}/rockets/${channel}`, { headers: bearer(TEST_KEYS.reader) })).status).toBe(200);
      }
      expect((await fetch(`${services.api.url}/rockets`, { headers: bearer(TEST_KEYS.reader) })).status).toBe(200);
      await sleep(250);
    }
  }

  beforeAll(async () => {
    prometheusInstalled();
    dir = mkdtempSync(join(tmpdir(), "rockets-prometheus-"));
    nats = await NatsServer.start();
    const env = { PARTITIONS: String(PARTITIONS), LOG_LEVEL: "warn" };
    const started = await Promise.all((["ingest", "sequencer", "api"] as const).map((name) => ServiceProcess.start(name, { natsUrl: nats.url, env })));
    [services.ingest, services.sequencer, services.api] = started as [ServiceProcess, ServiceProcess, ServiceProcess];

    // The compose Prometheus configuration, with its targets pointed at the
    // processes here and a 1 s scrape and evaluation interval.
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const source = readYaml<{ rule_files: string[]; scrape_configs: Array<{ job_name: string; metrics_path?: string; authorization?: { credentials_file?: string } }> }>(
      join(PROMETHEUS_DIR, "prometheus.yml"),
    );
    // The metrics key compose mounts for Prometheus, here the test scraper's.
    const keyFile = join(dir, "metrics-key");
    writeFileSync(keyFile, `${TEST_KEYS.scraper}\n`, { mode: 0o600 });
    const local: Record<string, string | undefined> = {
      ingest: `127.0.0.1:${services.ingest.port}`,
      sequencer: `127.0.0.1:${services.sequencer.port}`,
      api: `127.0.0.1:${services.api.port}`,
      prometheus: `127.0.0.1:${promPort}`,
      nats: undefined, // prometheus-nats-exporter does not run here
    };
    expect(source.scrape_configs.map((j) => j.job_name).sort()).toEqual(Object.keys(local).sort());
    const config = {
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      rule_files: source.rule_files.map((f) => join(PROMETHEUS_DIR, f)),
      scrape_configs: source.scrape_configs
        .filter((j) => local[j.job_name] !== undefined)
        .map((j) => ({
          job_name: j.job_name,
          metrics_path: j.metrics_path ?? "/metrics",
          ...(j.authorization?.credentials_file && { authorization: { ...j.authorization, credentials_file: keyFile } }),
          static_configs: [{ targets: [local[j.job_name]] }],
        })),
    };
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    prometheus = spawn(
      "prometheus",
      [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`, "--log.level=warn"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (chunk: Buffer) => (prometheusOutput = (prometheusOutput + chunk.toString()).slice(-20_000));
    prometheus.stdout?.on("data", keep);
    prometheus.stderr?.on("data", keep);
    await waitFor("Prometheus to be ready", async () => (await fetch(`${promUrl}/-/ready`)).ok);
    await waitFor("two scrapes of every service before the traffic", async () => {
      const r = await query('count_over_time(up{job=~"ingest|sequencer|api"}[1m]) >= 2');
      return r.data?.result.length === 3;
    });

    await sendTraffic();
    // Scrapes after the traffic ended, so every rate over the last minute has its samples.
    const trafficEnd = Date.now() / 1000;
    await waitFor("two scrapes of every service after the traffic", async () => {
      const r = await query('timestamp(up{job=~"ingest|sequencer|api"})');
      return r.data?.result.length === 3 && r.data.result.every((s) => Number(s.value[1]) > trafficEnd + 1.5);
    });
    await waitFor("the scraped figures to include every message", async () => {
      const r = await query('sum(rockets_sequencer_messages_total{outcome=~"applied|buffered|duplicate"})');
      return Number(r.data?.result[0]?.value[1]) >= sent.deliveries;
    });
  }, 180_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((r) => prometheus!.once("exit", r));
      prometheus.kill("SIGTERM");
      await exited;
    }
    await Promise.all(Object.values(services).map((s) => s.stop()));
    await nats?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists as exporter-only exactly the panels that use the exporter's metrics", () => {
    const fromExporter = [...new Set(dashboardTargets.filter((t) => EXPORTER_METRIC.test(t.expr)).map((t) => t.panel))];
    expect(fromExporter.sort()).toEqual([...EXPORTER_PANELS].sort());
    for (const panel of EXPORTER_PANELS) {
      expect(dashboardTargets.filter((t) => t.panel === panel).every((t) => EXPORTER_METRIC.test(t.expr)), panel).toBe(true);
    }
  });

  it("evaluates every dashboard expression, and each one not fed by the exporter returns data", async () => {
    const problems: string[] = [];
    for (const t of dashboardTargets) {
      const r = await query(t.expr);
      const where = `${t.panel} [${t.refId}] ${t.expr}`;
      if (r.status !== "success") {
        problems.push(`${where}: ${r.error}`);
        continue;
      }
      if (EXPORTER_PANELS.includes(t.panel)) continue;
      const values = r.data!.result.map((s) => Number(s.value[1]));
      if (!values.some((v) => Number.isFinite(v))) problems.push(`${where}: no data (${JSON.stringify(r.data!.result)})`);
    }
    expect(problems).toEqual([]);
  });

  it("evaluates every alert expression; on this healthy system only the missing exporter's alert holds", async () => {
    const holding: string[] = [];
    for (const rule of rules) {
      const r = await query(rule.expr);
      expect(r.status, `${rule.alert}: ${r.error}`).toBe("success");
      if (r.data!.result.length > 0) holding.push(rule.alert);
    }
    expect(holding).toEqual(HOLDS_WITHOUT_EXPORTER);
  });

  it("names only metrics the services export, apart from the exporter's, in the dashboard and the rules", async () => {
    const body = (await (await fetch(`${promUrl}/api/v1/label/__name__/values`)).json()) as { data: string[] };
    const exported = new Set(body.data);
    const named = new Set([...dashboardTargets.map((t) => t.expr), ...rules.map((r) => r.expr)].flatMap((e) => [...e.matchAll(/\b(rockets_[a-z0-9_]+|up)\b/g)].map((m) => m[1]!)));
    expect([...named].filter((n) => !exported.has(n)), "named but never scraped").toEqual([]);
  });

  it("loads the rule file into Prometheus, where every rule evaluates without error", async () => {
    await waitFor("every rule to be evaluated", async () => {
      const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ lastEvaluation: string }> }> } };
      return body.data.groups.flatMap((g) => g.rules).every((r) => !r.lastEvaluation.startsWith("0001"));
    });
    const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
    };
    const loaded = body.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert).sort());
    expect(loaded.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
  });

  it("passes the compose healthchecks on the running services, and fails them where nothing listens", async () => {
    const compose = readCompose();
    const closed = await freePort();
    for (const name of ["ingest", "sequencer", "api"] as const) {
      const [, command, ...args] = compose.services[name]!.healthcheck!.test;
      const pointedAt = (port: number) => args.map((a) => a.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`));
      expect(spawnSync(command!, pointedAt(services[name].port), { timeout: 10_000 }).status, `${name} healthy`).toBe(0);
      expect(spawnSync(command!, pointedAt(closed), { timeout: 10_000 }).status, `${name} unreachable`).toBe(1);
    }
  });

  it("answers the Kubernetes probe and scrape paths on the running services: probes open, /metrics with the metrics key only", async () => {
    for (const service of Object.values(services)) {
      for (const path of ["/readyz", "/healthz"]) {
        expect((await fetch(`${service.url}${path}`)).status, `${service.name} ${path}`).toBe(200);
      }
      expect((await fetch(`${service.url}/metrics`)).status, `${service.name} /metrics without a key`).toBe(401);
      expect((await fetch(`${service.url}/metrics`, { headers: bearer(TEST_KEYS.scraper) })).status, `${service.name} /metrics`).toBe(200);
    }
  });
});
