// docker-compose.yml: every service is complete (an image or a build, ports,
// a healthcheck), NATS keeps JetStream on a volume behind the exporter, and
// Prometheus and Grafana are wired to what compose actually runs.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertNatsServerInstalled, freePort, NATS_SERVER_BIN } from "../internal/testing/nats-server.js";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { containerPort, readCompose } from "./deploy/compose.js";
import { readYaml, ROOT } from "./deploy/manifests.js";
import { SERVICES } from "./deploy/service-contracts.js";

interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: Array<{
    job_name: string;
    authorization?: { type?: string; credentials_file?: string };
    static_configs?: Array<{ targets: string[] }>;
    dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
  }>;
}

const compose = readCompose();

/** A service's environment with compose's interpolation defaults applied (`${VAR:-default}` -> default). */
function serviceEnv(name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(compose.services[name]!.environment ?? {}).map(([k, v]) => [k, /^\$\{\w+:-(.*)\}$/.exec(v)?.[1] ?? v]));
}

describe("docker-compose.yml", () => {
  it("runs NATS, its exporter, the three services, Prometheus and Grafana", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["api", "grafana", "ingest", "nats", "nats-exporter", "prometheus", "sequencer"]);
  });

  it("gives every service an image or a build, published ports and a healthcheck", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image ?? service.build, `${name}: image or build`).toBeTruthy();
      expect(service.ports?.length, `${name}: ports`).toBeGreaterThan(0);
      for (const p of service.ports ?? []) expect(containerPort(p), `${name}: port ${p}`).toBeGreaterThan(0);
      expect(service.healthcheck?.test?.[0], `${name}: healthcheck`).toMatch(/^CMD(-SHELL)?$/);
      expect(service.healthcheck?.test.length, `${name}: healthcheck command`).toBeGreaterThan(1);
      expect(service.healthcheck?.interval, `${name}: healthcheck interval`).toMatch(/^\d+s$/);
    }
  });

  it("builds the services' image from this repository's Dockerfile and waits for a healthy NATS", () => {
    for (const name of SERVICES) {
      const service = compose.services[name]!;
      expect(service.build).toBe(".");
      expect(existsSync(join(ROOT, "Dockerfile"))).toBe(true);
      expect(service.depends_on?.["nats"]?.condition).toBe("service_healthy");
    }
  });

  it("publishes NATS's ports and its exporter's on this machine only (monitoring has no authentication)", () => {
    for (const name of ["nats", "nats-exporter"]) {
      const service = compose.services[name]!;
      expect(service.ports?.length, name).toBeGreaterThan(0);
      for (const p of service.ports ?? []) expect(p, `${name} ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });

  it("gives each service its own NATS user, the password the server holds for that user, and the inbox it may read", () => {
    const server = compose.services["nats"]!.environment ?? {};
    const accounts = readFileSync(join(ROOT, "deploy", "nats", "accounts.conf"), "utf8");
    const passwords = new Set<string>();
    for (const name of SERVICES) {
      const env = compose.services[name]!.environment ?? {};
      expect(env["NATS_USER"], name).toBe(name);
      expect(env["NATS_INBOX_PREFIX"], name).toBe(`_INBOX_${name}`);
      const variable = `NATS_${name.toUpperCase()}_PASSWORD`;
      expect(accounts, `accounts.conf reads ${variable}`).toContain(`password: $${variable}\n`);
      // The very same expression, so a value set in .env reaches both.
      expect(env["NATS_PASSWORD"], name).toBe(server[variable]);
      expect(env["NATS_PASSWORD"]).toMatch(new RegExp(`^\\$\\{${variable}:-.+\\}$`));
      passwords.add(serviceEnv(name)["NATS_PASSWORD"]!);
    }
    expect(passwords.size).toBe(SERVICES.length);
    // The server includes the users (compose.conf -> accounts.conf), both mounted.
    expect(compose.services["nats"]!.volumes).toContain("./deploy/nats/accounts.conf:/etc/nats/accounts.conf:ro");
    expect(readFileSync(join(ROOT, "deploy", "nats", "compose.conf"), "utf8")).toMatch(/^include \.\/accounts\.conf$/m);
  });

  it("runs two sequencers at least, on container-only ports so that replicas do not clash", () => {
    const sequencer = compose.services["sequencer"]!;
    expect(sequencer.deploy?.replicas).toBeGreaterThanOrEqual(2);
    for (const p of sequencer.ports ?? []) expect(p).toMatch(/^\d+$/);
  });

  it("keeps JetStream on a named volume and exposes NATS monitoring to the exporter", () => {
    const nats = compose.services["nats"]!;
    expect(nats.image).toMatch(/^nats:2\.(1\d)\.\d+-alpine$/);
    expect(nats.command).toContain("--jetstream");
    const storeDir = nats.command![nats.command!.indexOf("--store_dir") + 1];
    const volume = nats.volumes?.find((v) => v.endsWith(`:${storeDir}`));
    expect(volume, "store_dir on a volume").toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume!.split(":")[0]);
    const monitorPort = nats.command![nats.command!.indexOf("--http_port") + 1];
    expect(nats.ports).toContain(`127.0.0.1:${monitorPort}:${monitorPort}`);

    const exporter = compose.services["nats-exporter"]!;
    expect(exporter.image).toMatch(/^natsio\/prometheus-nats-exporter:\d+\.\d+\.\d+$/);
    expect(exporter.command).toContain("-jsz=all");
    expect(exporter.command?.at(-1)).toBe(`http://nats:${monitorPort}`);
  });

  it("runs the NATS line the tests run, fsyncing every write before its ack unless told otherwise", async () => {
    const nats = compose.services["nats"]!;
    const [major, minor] = assertNatsServerInstalled().split(".");
    expect(nats.image).toMatch(new RegExp(`^nats:${major}\\.${minor}\\.\\d+-alpine$`));
    // Compose's own command and default environment, with its container paths mapped to this machine.
    const mounts = new Map((nats.volumes ?? []).map((v) => [v.split(":")[1]!, v.split(":")[0]!]));
    const store = mkdtempSync(join(tmpdir(), "rockets-compose-nats-"));
    const [port, monitor] = [await freePort(), await freePort()];
    const args = nats.command!.map((arg) => {
      if (arg === "8222") return String(monitor);
      const host = mounts.get(arg);
      if (host === undefined) return arg;
      return host.startsWith("./") ? join(ROOT, host) : store;
    });
    const defaults = serviceEnv("nats");
    expect(defaults["NATS_SYNC_INTERVAL"]).toBe("always");
    const child = spawn(NATS_SERVER_BIN, [...args, "-a", "127.0.0.1", "-p", String(port)], { env: { ...process.env, ...defaults }, stdio: "ignore" });
    try {
      let jsz: { config?: { sync_always?: boolean; store_dir?: string } } | undefined;
      const deadline = Date.now() + 10_000;
      while (!jsz && Date.now() < deadline) {
        jsz = await fetch(`http://127.0.0.1:${monitor}/jsz`).then((r) => (r.ok ? (r.json() as Promise<typeof jsz>) : undefined), () => undefined);
        if (!jsz) await new Promise((r) => setTimeout(r, 100));
      }
      expect(jsz?.config?.sync_always).toBe(true);
      expect(jsz?.config?.store_dir).toContain(store);
      // The users of deploy/nats/accounts.conf, with compose's default passwords: each service's gets in, nobody else.
      const server = `127.0.0.1:${port}`;
      for (const name of SERVICES) {
        const env = serviceEnv(name);
        const nc = await connect({ servers: server, user: env["NATS_USER"], pass: env["NATS_PASSWORD"], inboxPrefix: env["NATS_INBOX_PREFIX"] });
        await nc.flush();
        await nc.close();
      }
      await expect(connect({ servers: server, reconnect: false })).rejects.toThrow(/authorization/i);
      await expect(connect({ servers: server, user: "ingest", pass: "wrong", reconnect: false })).rejects.toThrow(/authorization/i);
    } finally {
      child.kill("SIGKILL");
      rmSync(store, { recursive: true, force: true });
    }
  });

  it("points Prometheus at every service compose runs, with the rules mounted beside its config", () => {
    const prometheus = compose.services["prometheus"]!;
    expect(prometheus.volumes).toContain("./deploy/prometheus:/etc/prometheus:ro");
    expect(prometheus.command).toContain("--config.file=/etc/prometheus/prometheus.yml");
    const config = readYaml<PrometheusConfig>(join(ROOT, "deploy", "prometheus", "prometheus.yml"));
    expect(config.rule_files).toEqual(["rules/*.rules.yml"]);

    const published = (service: string) => (compose.services[service]!.ports ?? []).map(containerPort);
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(Object.keys(jobs).sort()).toEqual(["api", "ingest", "nats", "prometheus", "sequencer"]);
    for (const [job, service] of [["ingest", "ingest"], ["api", "api"], ["nats", "nats-exporter"]] as const) {
      const [target] = jobs[job]!.static_configs![0]!.targets;
      const [host, port] = target!.split(":");
      expect(host, job).toBe(service);
      expect(published(service), job).toContain(Number(port));
    }
    // Every sequencer replica is its own target, found through compose's DNS.
    const sd = jobs["sequencer"]!.dns_sd_configs![0]!;
    expect(sd).toMatchObject({ names: ["sequencer"], type: "A" });
    expect(published("sequencer")).toContain(sd.port);
  });

  it("mounts the API keys file read-only where each service's AUTH_KEYS_FILE points, and Prometheus sends the mounted metrics key", () => {
    for (const name of SERVICES) {
      const service = compose.services[name]!;
      const keysFile = service.environment?.["AUTH_KEYS_FILE"];
      expect(keysFile, `${name}: AUTH_KEYS_FILE`).toBeTruthy();
      expect(service.environment?.["AUTH"] ?? "on", `${name}: AUTH`).toBe("on");
      const mount = service.volumes?.find((v) => v.split(":")[1] === keysFile);
      expect(mount, `${name}: a volume at ${keysFile}`).toBeDefined();
      expect(mount!.split(":")[2], `${name}: read-only`).toBe("ro");
      expect(existsSync(join(ROOT, mount!.split(":")[0]!)), `${name}: ${mount}`).toBe(true);
    }
    const prometheus = compose.services["prometheus"]!;
    const config = readYaml<PrometheusConfig>(join(ROOT, "deploy", "prometheus", "prometheus.yml"));
    for (const job of config.scrape_configs.filter((j) => (SERVICES as readonly string[]).includes(j.job_name))) {
      const file = job.authorization?.credentials_file;
      expect(file, `${job.job_name}: authorization.credentials_file`).toBeTruthy();
      const mount = prometheus.volumes?.find((v) => v.split(":")[1] === file);
      expect(mount, `prometheus: a volume at ${file}`).toMatch(/^\.\/deploy\/keys\/metrics-key:.*:ro$/);
    }
  });

  it("provisions Grafana with the Prometheus datasource and the dashboard directory it mounts", () => {
    const grafana = compose.services["grafana"]!;
    expect(grafana.volumes).toContain("./deploy/grafana/provisioning:/etc/grafana/provisioning:ro");
    const dashboardsMount = grafana.volumes!.find((v) => v.startsWith("./deploy/grafana/dashboards:"))!;
    const mountedAt = dashboardsMount.split(":")[1];

    const provider = readYaml<{ providers: Array<{ type: string; options: { path: string } }> }>(
      join(ROOT, "deploy", "grafana", "provisioning", "dashboards", "rockets.yaml"),
    );
    expect(provider.providers.map((p) => p.options.path)).toEqual([mountedAt]);
    expect(grafana.environment?.["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).toBe(`${mountedAt}/rockets.json`);

    const datasources = readYaml<{ datasources: Array<{ type: string; url: string; isDefault?: boolean }> }>(
      join(ROOT, "deploy", "grafana", "provisioning", "datasources", "prometheus.yaml"),
    );
    const [datasource] = datasources.datasources;
    expect(datasource?.type).toBe("prometheus");
    const url = new URL(datasource!.url);
    expect(url.hostname).toBe("prometheus");
    expect(compose.services["prometheus"]!.ports!.map(containerPort)).toContain(Number(url.port));
  });
});
