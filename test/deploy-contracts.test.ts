// The deployment files and the code agree: images, commands, ports, probe
// paths and environment variable names in docker-compose.yml and deploy/k8s
// are the ones the services read (from cmd/*/config.ts and
// internal/config/common.ts), and the environment each deployment gives a
// service is a configuration that service accepts.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { containerPort, readCompose } from "./deploy/compose.js";
import { loadKustomization, ROOT, type K8sObject } from "./deploy/manifests.js";
import { imageName, serviceContracts, SERVICES, type Service, type ServiceContract } from "./deploy/service-contracts.js";
import { testKeysFile } from "../internal/testing/api-keys.js";

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
}
interface Workload extends K8sObject {
  spec: { template: { metadata: { annotations?: Record<string, string> }; spec: { containers: Container[] } } };
}

const compose = readCompose();
const manifests = loadKustomization();
const objects = manifests.map((m) => m.object);
const find = <T extends K8sObject>(kind: string, name: string): T => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  return o as T;
};
const configData = (kind: "ConfigMap" | "Secret", name: string): Record<string, string> => {
  const data = (find(kind, name) as { data?: Record<string, string> }).data ?? {};
  return kind === "Secret" ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()])) : data;
};

/** The environment a Kubernetes container gets: envFrom sources, then env (fieldRefs as a pod name would be). */
function k8sEnvironment(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configData("ConfigMap", from.configMapRef.name));
    if (from.secretRef) Object.assign(env, configData("Secret", from.secretRef.name));
  }
  for (const e of container.env ?? []) env[e.name] = e.value ?? `${container.name}-5d8f7c9b4-x2x7q`;
  return env;
}

let contracts: Record<Service, ServiceContract>;
beforeAll(async () => {
  contracts = await serviceContracts();
});

describe("deployment files agree with the code", () => {
  it("run one image named after the package, in compose and in Kubernetes", () => {
    const image = imageName();
    for (const service of SERVICES) {
      expect(compose.services[service]!.image, `compose ${service}`).toBe(image);
      const [container] = find<Workload>("Deployment", service).spec.template.spec.containers;
      expect(container!.image, `k8s ${service}`).toBe(image);
    }
  });

  it("use the same NATS and exporter images in compose and Kubernetes", () => {
    const nats = find<Workload>("StatefulSet", "nats").spec.template.spec.containers;
    expect(nats.map((c) => c.image).sort()).toEqual([compose.services["nats"]!.image, compose.services["nats-exporter"]!.image].sort());
  });

  it("start each service by the name the image's entrypoint knows, and each has a main.ts", () => {
    const entrypoint = readFileSync(join(ROOT, "deploy", "docker", "entrypoint.sh"), "utf8");
    const known = /^\s*([a-z| ]+)\)\s*$/m.exec(entrypoint)![1]!.split("|").map((s) => s.trim());
    expect(known.sort()).toEqual([...SERVICES].sort());
    for (const service of SERVICES) {
      expect(compose.services[service]!.command).toEqual([service]);
      expect(find<Workload>("Deployment", service).spec.template.spec.containers[0]!.args).toEqual([service]);
      expect(readFileSync(join(ROOT, "cmd", service, "main.ts"), "utf8").length).toBeGreaterThan(0);
    }
  });

  it("set only environment variables the code reads", () => {
    const problems: string[] = [];
    for (const service of SERVICES) {
      const known = contracts[service].env;
      for (const name of Object.keys(compose.services[service]!.environment ?? {})) {
        if (!known.has(name)) problems.push(`compose ${service}: ${name} is not read by cmd/${service}`);
      }
      const container = find<Workload>("Deployment", service).spec.template.spec.containers[0]!;
      for (const name of Object.keys(k8sEnvironment(container))) {
        if (!known.has(name)) problems.push(`k8s ${service}: ${name} is not read by cmd/${service}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("give each service an environment its configuration accepts, reaching NATS by name", () => {
    // The keys file is mounted at AUTH_KEYS_FILE (checked in deploy-compose and deploy-k8s); here a real one stands in for it.
    const withKeys = (env: Record<string, string>) => ({ ...env, AUTH_KEYS_FILE: testKeysFile() });
    for (const service of SERVICES) {
      const contract = contracts[service];
      const composeEnv = compose.services[service]!.environment ?? {};
      expect(composeEnv["AUTH"] ?? "on", `compose ${service}: AUTH`).toBe("on");
      expect(composeEnv["AUTH_KEYS_FILE"], `compose ${service}: AUTH_KEYS_FILE`).toBeTruthy();
      expect(() => contract.loadConfig(withKeys(composeEnv)), `compose ${service}`).not.toThrow();
      expect(new URL(composeEnv["NATS_URL"]!.split(",")[0]!).hostname).toBe("nats");
      const k8sEnv = k8sEnvironment(find<Workload>("Deployment", service).spec.template.spec.containers[0]!);
      expect(k8sEnv["AUTH"] ?? "on", `k8s ${service}: AUTH`).toBe("on");
      expect(k8sEnv["AUTH_KEYS_FILE"], `k8s ${service}: AUTH_KEYS_FILE`).toBeTruthy();
      expect(() => contract.loadConfig(withKeys(k8sEnv)), `k8s ${service}`).not.toThrow();
      expect(k8sEnv["NATS_USER"], "credentials from the Secret").toBeTruthy();
    }
  });

  it("ship placeholder keys files that every service refuses until they are replaced", () => {
    for (const placeholder of ["deploy/keys/keys", "deploy/k8s/keys/keys"]) {
      const text = readFileSync(join(ROOT, placeholder), "utf8");
      expect(text, placeholder).toMatch(/REPLACE THIS FILE/);
      for (const service of SERVICES) {
        expect(() => contracts[service].loadConfig({ AUTH_KEYS_FILE: join(ROOT, placeholder) }), `${service} on ${placeholder}`).toThrow(/lists no key/);
      }
    }
  });

  it("expose, probe and scrape the port each service listens on, at /readyz, /healthz and /metrics", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const exposed = /^EXPOSE\s+(.+)$/m.exec(dockerfile)![1]!.split(/\s+/).map(Number);
    for (const service of SERVICES) {
      const { defaultPort } = contracts[service];
      expect(exposed, `Dockerfile EXPOSE ${service}`).toContain(defaultPort);

      const c = compose.services[service]!;
      const listens = Number(c.environment?.["PORT"] ?? defaultPort);
      expect(c.ports!.map(containerPort), `compose ${service} ports`).toContain(listens);
      const probe = c.healthcheck!.test.join(" ");
      expect(probe, `compose ${service} healthcheck`).toContain(`http://127.0.0.1:${listens}/readyz`);

      const workload = find<Workload>("Deployment", service);
      const container = workload.spec.template.spec.containers[0]!;
      const k8sPort = Number(k8sEnvironment(container)["PORT"] ?? defaultPort);
      const port = container.ports!.find((p) => p.containerPort === k8sPort);
      expect(port, `k8s ${service} containerPort ${k8sPort}`).toBeDefined();
      expect(container.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: port!.name });
      expect(container.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: port!.name });
      expect(workload.spec.template.metadata.annotations?.["prometheus.io/port"]).toBe(String(k8sPort));
    }
  });

  it("document every environment variable the code reads in docs/operations.md", () => {
    const docs = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
    const names = new Set(SERVICES.flatMap((s) => [...contracts[s].env]));
    expect([...names].filter((n) => !docs.includes(`\`${n}\``)), "undocumented").toEqual([]);
  });

  it("publish ingest on 8088 and the API on 8080 in compose, as the README and the rockets program expect", () => {
    expect(compose.services["ingest"]!.ports).toContain(`${contracts.ingest.defaultPort}:${contracts.ingest.defaultPort}`);
    expect(compose.services["api"]!.ports).toContain(`${contracts.api.defaultPort}:${contracts.api.defaultPort}`);
    expect([contracts.ingest.defaultPort, contracts.api.defaultPort]).toEqual([8088, 8080]);
  });
});
