// The Kubernetes base (deploy/k8s): every object is valid for its kind, the
// kustomization builds, references between objects resolve, pods are locked
// down and probed, and the NATS configuration really forms a JetStream
// cluster that demands the Secrets' credentials.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { assertNatsServerInstalled, freePort, NATS_SERVER_BIN } from "../internal/testing/nats-server.js";
import {
  containerEnvironment,
  K8S_DIR,
  loadKustomization,
  volumeFiles,
  schemaProblem,
  unfoldSecretData,
  unknownFieldProblems,
  type K8sObject,
  type Manifest,
} from "./deploy/manifests.js";
import { stopChildren } from "./script-process.js";

interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface ContainerPort {
  name?: string;
  containerPort: number;
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  ports?: ContainerPort[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  terminationMessagePolicy?: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  volumes?: Array<{
    name: string;
    configMap?: { name: string };
    projected?: { sources: Array<{ configMap?: { name: string } }> };
    secret?: { secretName: string };
    emptyDir?: object;
  }>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  affinity?: {
    podAntiAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: Array<{ topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }>;
    };
  };
  topologySpreadConstraints?: Array<{ topologyKey: string; maxSkew: number; labelSelector: { matchLabels: Record<string, string> } }>;
}
interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    serviceName?: string;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: Array<{ metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }>;
  };
}
interface ServiceObject extends K8sObject {
  spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Record<string, string>; ports: Array<{ name?: string; port: number; targetPort?: string | number }> };
}

const manifests = loadKustomization();
const objects = manifests.map((m) => m.object);
const ofKind = <T extends K8sObject>(kind: string): T[] => objects.filter((o) => o.kind === kind) as T[];
const named = <T extends K8sObject>(kind: string, name: string): T => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in deploy/k8s`);
  return found as T;
};
const workloads = (): Workload[] => [...ofKind<Workload>("Deployment"), ...ofKind<Workload>("StatefulSet")];
const allContainers = (w: Workload): Container[] => [...w.spec.template.spec.containers, ...(w.spec.template.spec.initContainers ?? [])];
const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined): boolean =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const dataOf = (o: K8sObject): Record<string, string> => {
  const data = (o as { data?: Record<string, string> }).data ?? {};
  if (o.kind !== "Secret") return data;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
};
const portNames = (w: Workload): Set<string> => new Set(allContainers(w).flatMap((c) => (c.ports ?? []).map((p) => p.name ?? "")));

function hasKubectl(): boolean {
  return spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;
}

describe("Kubernetes base deploy/k8s", () => {
  it("holds the objects a deployment needs", () => {
    const kinds = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const expected of [
      "StatefulSet/nats",
      "Service/nats",
      "Service/nats-headless",
      "PodDisruptionBudget/nats",
      "ConfigMap/nats-config",
      "Deployment/ingest",
      "Service/ingest",
      "HorizontalPodAutoscaler/ingest",
      "Deployment/api",
      "Service/api",
      "HorizontalPodAutoscaler/api",
      "Deployment/sequencer",
      "ConfigMap/rockets-config",
      "Secret/nats-ingest-credentials",
      "Secret/nats-api-credentials",
      "Secret/nats-sequencer-credentials",
      "Secret/nats-admin-credentials",
      "Secret/nats-system-credentials",
      "ConfigMap/nats-accounts",
      "NetworkPolicy/default-deny-ingress",
      "NetworkPolicy/default-deny-egress",
      "Secret/nats-route-credentials",
      "ServiceAccount/rockets-nats",
      "ServiceAccount/rockets-ingest",
      "ServiceAccount/rockets-sequencer",
      "ServiceAccount/rockets-api",
      "ServiceMonitor/ingest",
      "ServiceMonitor/api",
      "PodMonitor/sequencer",
      "PodMonitor/nats",
      "PrometheusRule/rockets",
      "ConfigMap/rockets-grafana-dashboard",
    ]) {
      expect(kinds, expected).toContain(expected);
    }
  });

  it("validates every object against its kind's schema", () => {
    const problems = manifests.map(schemaProblem).filter((p) => p !== undefined);
    expect(problems).toEqual([]);
  });

  it("names no field its kind does not define (the schemas alone let misspelt fields through)", () => {
    expect(unknownFieldProblems(manifests)).toEqual([]);
  });

  it("catches a misspelt field, so the check above can fail", () => {
    const ingest = structuredClone(manifests.find((m) => m.object.kind === "Deployment" && m.object.metadata.name === "ingest")!);
    const container = (ingest.object as Workload).spec.template.spec.containers[0]! as Container & Record<string, unknown>;
    container["readinesProbe"] = container.readinessProbe;
    const problems = unknownFieldProblems([ingest]);
    expect(problems.join("\n")).toMatch(/readinesProbe/);
  });

  const kubectl = hasKubectl();
  if (!kubectl) {
    console.warn(
      "\n[deploy-k8s] kubectl is not installed: `kubectl kustomize deploy/k8s` is NOT run. The kustomization is still " +
        "checked by the test loader (every resource, generator file and reference), which refuses kustomize features it does not model.\n",
    );
  }
  it.skipIf(!kubectl)("builds with `kubectl kustomize` into valid objects, the same ones the test loader reads (skipped without kubectl)", () => {
    const build = spawnSync("kubectl", ["kustomize", K8S_DIR], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    const rendered = parseAllDocuments(build.stdout).map((d) => unfoldSecretData(d.toJS() as K8sObject));
    const renderedManifests: Manifest[] = rendered.map((object) => ({ source: "kubectl kustomize", object, generated: false }));
    expect(renderedManifests.map(schemaProblem).filter((p) => p !== undefined)).toEqual([]);

    // Generated names get a content hash suffix unless disabled; everything lands in one namespace.
    const key = (o: K8sObject, generatedNames: Set<string>) => {
      const base = [...generatedNames].find((n) => o.metadata.name.startsWith(`${n}-`) && /^-[a-z0-9]{10}$/.test(o.metadata.name.slice(n.length)));
      return `${o.kind}/${base ?? o.metadata.name}`;
    };
    const generatedNames = new Set(manifests.filter((m) => m.generated).map((m) => m.object.metadata.name));
    expect(rendered.map((o) => key(o, generatedNames)).sort()).toEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    const namespaces = new Set(rendered.filter((o) => o.kind !== "Namespace").map((o) => o.metadata.namespace));
    expect([...namespaces]).toEqual(["rockets"]);
    for (const o of rendered) expect(o.metadata.labels?.["app.kubernetes.io/part-of"], `${o.kind}/${o.metadata.name}`).toBe("rockets");
  });

  it("resolves every reference: config and secrets, selectors, ports, scale targets, monitors", () => {
    const problems: string[] = [];
    const exists = (kind: string, name: string) => objects.some((o) => o.kind === kind && o.metadata.name === name);
    for (const w of workloads()) {
      const where = `${w.kind}/${w.metadata.name}`;
      if (!matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels)) problems.push(`${where}: selector does not match its pod template`);
      const ports = portNames(w);
      for (const c of allContainers(w)) {
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef && !exists("ConfigMap", from.configMapRef.name)) problems.push(`${where}/${c.name}: no ConfigMap ${from.configMapRef.name}`);
          if (from.secretRef && !exists("Secret", from.secretRef.name)) problems.push(`${where}/${c.name}: no Secret ${from.secretRef.name}`);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref && !(exists("Secret", ref.name) && ref.key in dataOf(named("Secret", ref.name)))) {
            problems.push(`${where}/${c.name}: env ${e.name} refers to missing ${ref.name}/${ref.key}`);
          }
        }
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
          const port = probe?.httpGet?.port;
          if (typeof port === "string" && !ports.has(port)) problems.push(`${where}/${c.name}: probe port ${port} is not a declared port`);
        }
      }
      for (const v of w.spec.template.spec.volumes ?? []) {
        for (const map of [v.configMap, ...(v.projected?.sources ?? []).map((s) => s.configMap)]) {
          if (map && !exists("ConfigMap", map.name)) problems.push(`${where}: volume ${v.name} needs ConfigMap ${map.name}`);
        }
        if (v.secret && !exists("Secret", v.secret.secretName)) problems.push(`${where}: volume ${v.name} needs Secret ${v.secret.secretName}`);
      }
      const account = w.spec.template.spec.serviceAccountName;
      if (account !== undefined && !exists("ServiceAccount", account)) problems.push(`${where}: no ServiceAccount ${account}`);
    }
    for (const s of ofKind<ServiceObject>("Service")) {
      const backing = workloads().filter((w) => matches(s.spec.selector, w.spec.template.metadata.labels));
      if (backing.length === 0) problems.push(`Service/${s.metadata.name}: selector matches no pod template`);
      for (const p of s.spec.ports) {
        if (typeof p.targetPort === "string" && !backing.some((w) => portNames(w).has(p.targetPort as string))) {
          problems.push(`Service/${s.metadata.name}: targetPort ${p.targetPort} is not a port of its pods`);
        }
      }
    }
    for (const sts of ofKind<Workload>("StatefulSet")) {
      const headless = objects.find((o) => o.kind === "Service" && o.metadata.name === sts.spec.serviceName) as ServiceObject | undefined;
      if (headless?.spec.clusterIP !== "None") problems.push(`StatefulSet/${sts.metadata.name}: serviceName ${sts.spec.serviceName} is not a headless Service`);
    }
    for (const hpa of ofKind<K8sObject & { spec: { scaleTargetRef: { kind: string; name: string } } }>("HorizontalPodAutoscaler")) {
      if (!exists(hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name)) problems.push(`HPA/${hpa.metadata.name}: no scale target`);
    }
    for (const pdb of ofKind<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>("PodDisruptionBudget")) {
      if (!workloads().some((w) => matches(pdb.spec.selector.matchLabels, w.spec.template.metadata.labels))) problems.push(`PDB/${pdb.metadata.name}: selects no pods`);
    }
    type Monitor = K8sObject & {
      spec: { jobLabel?: string; selector: { matchLabels: Record<string, string> }; endpoints?: Array<{ port: string }>; podMetricsEndpoints?: Array<{ port: string }> };
    };
    for (const sm of ofKind<Monitor>("ServiceMonitor")) {
      const services = ofKind<ServiceObject>("Service").filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
      if (services.length === 0) problems.push(`ServiceMonitor/${sm.metadata.name}: selects no Service`);
      for (const e of sm.spec.endpoints ?? []) {
        if (!services.some((s) => s.spec.ports.some((p) => p.name === e.port))) problems.push(`ServiceMonitor/${sm.metadata.name}: no Service port ${e.port}`);
      }
      if (sm.spec.jobLabel && !services.every((s) => s.metadata.labels?.[sm.spec.jobLabel!])) problems.push(`ServiceMonitor/${sm.metadata.name}: Services lack ${sm.spec.jobLabel}`);
    }
    for (const pm of ofKind<Monitor>("PodMonitor")) {
      const pods = workloads().filter((w) => matches(pm.spec.selector.matchLabels, w.spec.template.metadata.labels));
      if (pods.length === 0) problems.push(`PodMonitor/${pm.metadata.name}: selects no pods`);
      for (const e of pm.spec.podMetricsEndpoints ?? []) {
        if (!pods.some((w) => portNames(w).has(e.port))) problems.push(`PodMonitor/${pm.metadata.name}: no container port ${e.port}`);
      }
      if (pm.spec.jobLabel && !pods.every((w) => w.spec.template.metadata.labels[pm.spec.jobLabel!])) problems.push(`PodMonitor/${pm.metadata.name}: pods lack ${pm.spec.jobLabel}`);
    }
    expect(problems).toEqual([]);
  });

  it("mounts the API keys Secret read-only where each service's AUTH_KEYS_FILE points, and the monitors send the metrics key", () => {
    const secret = named("Secret", "rockets-api-keys");
    for (const name of ["ingest", "sequencer", "api"]) {
      const pod = named<Workload>("Deployment", name).spec.template.spec;
      const container = pod.containers[0]!;
      const keysFile = container.env?.find((e) => e.name === "AUTH_KEYS_FILE")?.value;
      expect(keysFile, `${name}: AUTH_KEYS_FILE`).toBeTruthy();
      expect(container.env?.find((e) => e.name === "AUTH")?.value ?? "on", `${name}: AUTH`).toBe("on");
      const mount = container.volumeMounts?.find((m) => keysFile!.startsWith(`${m.mountPath}/`));
      expect(mount, `${name}: a mount holding ${keysFile}`).toBeDefined();
      expect(mount!.readOnly, `${name}: read-only`).toBe(true);
      const volume = pod.volumes?.find((v) => v.name === mount!.name);
      expect(volume?.secret?.secretName, `${name}: from the Secret`).toBe("rockets-api-keys");
      expect(Object.keys(dataOf(secret)), `${name}: the Secret holds the file`).toContain(keysFile!.slice(mount!.mountPath.length + 1));
    }
    type Endpoint = { port: string; authorization?: { type?: string; credentials?: { name: string; key: string } } };
    const monitors = objects.filter((o) => o.kind === "ServiceMonitor" || o.kind === "PodMonitor") as Array<K8sObject & { spec: { endpoints?: Endpoint[]; podMetricsEndpoints?: Endpoint[] } }>;
    for (const m of monitors.filter((o) => ["ingest", "sequencer", "api"].includes(o.metadata.name))) {
      for (const e of [...(m.spec.endpoints ?? []), ...(m.spec.podMetricsEndpoints ?? [])]) {
        expect(e.authorization?.type, `${m.kind}/${m.metadata.name}`).toBe("Bearer");
        const ref = e.authorization!.credentials!;
        expect(Object.keys(dataOf(named("Secret", ref.name))), `${m.kind}/${m.metadata.name}: ${ref.name}/${ref.key}`).toContain(ref.key);
      }
    }
  });

  it("runs every container as non-root with a read-only root filesystem, no privilege escalation and no capabilities", () => {
    const problems: string[] = [];
    for (const w of workloads()) {
      const pod = w.spec.template.spec.securityContext;
      for (const c of allContainers(w)) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        const sc = c.securityContext ?? {};
        if ((sc.runAsNonRoot ?? pod?.runAsNonRoot) !== true) problems.push(`${where}: runAsNonRoot is not true`);
        if (pod?.runAsUser === 0) problems.push(`${where}: runs as uid 0`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: root filesystem is writable`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: privilege escalation allowed`);
        if (!sc.capabilities?.drop?.includes("ALL")) problems.push(`${where}: capabilities not dropped`);
        if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${where}: adds capabilities`);
      }
      if (pod?.seccompProfile?.type !== "RuntimeDefault") problems.push(`${w.kind}/${w.metadata.name}: no RuntimeDefault seccomp profile`);
    }
    expect(problems).toEqual([]);
  });

  it("gives every container resource requests and limits, and readiness and liveness probes", () => {
    const problems: string[] = [];
    for (const w of workloads()) {
      for (const c of w.spec.template.spec.containers) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        for (const r of ["cpu", "memory"]) {
          if (!c.resources?.requests?.[r]) problems.push(`${where}: no ${r} request`);
          if (!c.resources?.limits?.[r]) problems.push(`${where}: no ${r} limit`);
        }
        if (!c.readinessProbe) problems.push(`${where}: no readiness probe`);
        if (!c.livenessProbe) problems.push(`${where}: no liveness probe`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("shows a service's refused configuration (exit 78, the problem in its last log lines) as the termination message", () => {
    for (const name of ["ingest", "sequencer", "api"]) {
      const [container] = named<Workload>("Deployment", name).spec.template.spec.containers;
      expect(container?.terminationMessagePolicy, name).toBe("FallbackToLogsOnError");
    }
  });

  it("runs NATS as a 3-node JetStream cluster: persistent volumes, /healthz probes, a disruption budget, the exporter sidecar", () => {
    const nats = named<Workload>("StatefulSet", "nats");
    expect(nats.spec.replicas).toBe(3);
    expect(nats.spec.volumeClaimTemplates?.map((v) => v.metadata.name)).toEqual(["data"]);
    const server = nats.spec.template.spec.containers.find((c) => c.name === "nats")!;
    expect(server.volumeMounts).toContainEqual({ name: "data", mountPath: "/data" });
    for (const probe of [server.startupProbe, server.readinessProbe, server.livenessProbe]) {
      expect(probe?.httpGet?.path).toMatch(/^\/healthz(\?|$)/);
      expect(probe?.httpGet?.port).toBe("monitor");
    }
    const exporter = nats.spec.template.spec.containers.find((c) => c.image?.startsWith("natsio/prometheus-nats-exporter:"));
    expect(exporter?.args).toContain("-jsz=all");
    expect(exporter?.args?.at(-1)).toMatch(/http:\/\/localhost:8222$/);
    const pdb = named<K8sObject & { spec: { maxUnavailable?: number } }>("PodDisruptionBudget", "nats");
    expect(pdb.spec.maxUnavailable).toBe(1);
    const headless = named<ServiceObject>("Service", "nats-headless");
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
  });

  it("replicates the stream 3 ways, as many as NATS servers, and runs the sequencer twice at least", () => {
    const config = dataOf(named("ConfigMap", "rockets-config"));
    expect(Number(config["STREAM_REPLICAS"])).toBe(named<Workload>("StatefulSet", "nats").spec.replicas);
    expect(Number(config["PARTITIONS"])).toBeGreaterThanOrEqual(1);
    expect(named<Workload>("Deployment", "sequencer").spec.replicas).toBeGreaterThanOrEqual(2);
    for (const name of ["ingest", "api"]) {
      const hpa = named<K8sObject & { spec: { minReplicas: number; maxReplicas: number } }>("HorizontalPodAutoscaler", name);
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    }
  });

  it("scrapes every workload: Prometheus annotations on the port a ServiceMonitor or PodMonitor also uses", () => {
    for (const w of workloads()) {
      const a = w.spec.template.metadata.annotations ?? {};
      expect(a["prometheus.io/scrape"], `${w.metadata.name}`).toBe("true");
      expect(a["prometheus.io/path"]).toBe("/metrics");
      const port = Number(a["prometheus.io/port"]);
      const declared = allContainers(w).flatMap((c) => c.ports ?? []);
      expect(declared.map((p) => p.containerPort), `${w.metadata.name} annotation port`).toContain(port);
      const job = w.spec.template.metadata.labels["app.kubernetes.io/name"];
      const monitor = objects.find(
        (o) => (o.kind === "ServiceMonitor" || o.kind === "PodMonitor") && o.metadata.labels?.["app.kubernetes.io/name"] === job,
      ) as (K8sObject & { spec: { jobLabel: string } }) | undefined;
      expect(monitor, `a monitor for ${job}`).toBeDefined();
      expect(monitor!.spec.jobLabel).toBe("app.kubernetes.io/name");
    }
  });

  it("ships the Grafana dashboard as a ConfigMap with the sidecar's label, generated from deploy/grafana's JSON", () => {
    const dashboards = ofKind("ConfigMap").filter((o) => o.metadata.labels?.["grafana_dashboard"] === "1");
    expect(dashboards.map((o) => o.metadata.name)).toEqual(["rockets-grafana-dashboard"]);
    const source = manifests.find((m) => m.object === dashboards[0])!.source;
    expect(source).toBe("deploy/grafana/kustomization.yaml");
    const json = JSON.parse(dataOf(dashboards[0]!)["rockets.json"]!) as { uid: string };
    expect(json.uid).toBe("rockets");
  });

  it("routes the NATS servers to each other by the headless Service's per-pod names, each route carrying the route password", () => {
    const nats = named<Workload>("StatefulSet", "nats");
    const conf = dataOf(named("ConfigMap", "nats-config"))["nats.conf"]!;
    const container = nats.spec.template.spec.containers.find((c) => c.name === "nats")!;
    const clusterPort = container.ports!.find((p) => p.name === "cluster")!.containerPort;
    const env = containerEnvironment(objects, container, "nats-0");
    const password = dataOf(named("Secret", "nats-route-credentials"))["NATS_ROUTE_PASSWORD"]!;
    const variables = [...conf.matchAll(/^\s*\$(NATS_ROUTE_\d+)$/gm)].map((m) => m[1]!);
    expect(variables).toHaveLength(nats.spec.replicas!);
    const routes = variables.map((v) => new URL(env[v]!));
    expect(routes.map((u) => `${u.hostname}:${u.port}`)).toEqual(Array.from({ length: nats.spec.replicas! }, (_, i) => `nats-${i}.${nats.spec.serviceName}:${clusterPort}`));
    for (const u of routes) expect([u.username, u.password]).toEqual(["route", password]);
    expect(conf).toMatch(/authorization \{\s*user: route\s*password: \$NATS_ROUTE_PASSWORD/);
    const url = new URL(dataOf(named("ConfigMap", "rockets-config"))["NATS_URL"]!);
    const client = named<ServiceObject>("Service", url.hostname);
    expect(client.spec.ports.map((p) => p.port)).toContain(Number(url.port));
  });
});

interface PolicyPeer {
  podSelector?: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values: string[] }> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
}
interface PolicyPort {
  port: string | number;
  protocol?: string;
}
interface Policy extends K8sObject {
  spec: {
    podSelector: PolicyPeer["podSelector"];
    policyTypes?: string[];
    ingress?: Array<{ from?: PolicyPeer[]; ports?: PolicyPort[] }>;
    egress?: Array<{ to?: Array<PolicyPeer & { ipBlock?: unknown }>; ports?: PolicyPort[] }>;
  };
}

/** kube-apiserver's label selector semantics, for the operators the policies use. */
function selects(selector: PolicyPeer["podSelector"], labels: Record<string, string>): boolean {
  if (!selector) return true;
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => {
    if (e.operator !== "In") throw new Error(`selector operator ${e.operator} is not modelled here`);
    return labels[e.key] !== undefined && e.values.includes(labels[e.key]!);
  });
  return byLabels && byExpressions;
}

/** Who may reach a workload's named port, by the policies that select it: "any", a workload of this namespace, or "namespace:<name>". */
function allowedSources(w: Workload, port: string): string[] {
  const labels = w.spec.template.metadata.labels;
  const sources = new Set<string>();
  for (const p of ofKind<Policy>("NetworkPolicy")) {
    if (!selects(p.spec.podSelector, labels)) continue;
    for (const rule of p.spec.ingress ?? []) {
      if (rule.ports && !rule.ports.some((r) => r.port === port)) continue;
      if (!rule.from) {
        sources.add("any");
        continue;
      }
      for (const peer of rule.from) {
        if (peer.namespaceSelector) {
          sources.add(`namespace:${peer.namespaceSelector.matchLabels?.["kubernetes.io/metadata.name"] ?? "?"}`);
          continue;
        }
        for (const other of workloads()) if (selects(peer.podSelector, other.spec.template.metadata.labels)) sources.add(other.metadata.name);
      }
    }
  }
  return [...sources].sort();
}

/**
 * Where a pod with these labels may connect, by the egress policies that
 * select it: "<workload>:<port name>" for this namespace's pods, "dns:<port>/<protocol>"
 * for the cluster's DNS, "any" or "ipBlock" for anything wider (none expected).
 */
function allowedDestinations(labels: Record<string, string>): string[] {
  const destinations = new Set<string>();
  let selected = false;
  for (const p of ofKind<Policy>("NetworkPolicy")) {
    if (!p.spec.policyTypes?.includes("Egress") || !selects(p.spec.podSelector, labels)) continue;
    selected = true;
    for (const rule of p.spec.egress ?? []) {
      const ports = rule.ports ?? [{ port: "*" }];
      if (!rule.to) destinations.add("any");
      for (const peer of rule.to ?? []) {
        if (peer.ipBlock) {
          destinations.add("ipBlock");
          continue;
        }
        if (peer.namespaceSelector) {
          const dns =
            peer.namespaceSelector.matchLabels?.["kubernetes.io/metadata.name"] === "kube-system" && peer.podSelector?.matchLabels?.["k8s-app"] === "kube-dns";
          for (const r of ports) destinations.add(dns ? `dns:${r.port}/${r.protocol ?? "TCP"}` : `namespace:${JSON.stringify(peer.namespaceSelector)}:${r.port}`);
          continue;
        }
        for (const other of workloads()) {
          if (!selects(peer.podSelector, other.spec.template.metadata.labels)) continue;
          for (const r of ports) destinations.add(`${other.metadata.name}:${r.port}`);
        }
      }
    }
  }
  // A pod no egress policy selects may connect anywhere (Kubernetes' rule).
  if (!selected) return ["any"];
  return [...destinations].sort();
}

describe("Kubernetes hardening in deploy/k8s", () => {
  it("refuses every connection into and out of the namespace's pods that no policy lets through", () => {
    for (const [name, type] of [
      ["default-deny-ingress", "Ingress"],
      ["default-deny-egress", "Egress"],
    ] as const) {
      const deny = named<Policy>("NetworkPolicy", name);
      expect(deny.spec.podSelector).toEqual({});
      expect(deny.spec.policyTypes).toEqual([type]);
      expect(deny.spec.ingress ?? []).toEqual([]);
      expect(deny.spec.egress ?? []).toEqual([]);
    }
    // Each policy says one direction, and holds rules of that direction only.
    for (const p of ofKind<Policy>("NetworkPolicy")) {
      expect(p.spec.policyTypes?.length, p.metadata.name).toBe(1);
      if (p.spec.policyTypes![0] === "Ingress") expect(p.spec.egress, p.metadata.name).toBeUndefined();
      else expect(p.spec.ingress, p.metadata.name).toBeUndefined();
    }
  });

  it("lets ingest, the API and the sequencer reach only NATS's client port and DNS, and NATS only the other servers' route port and DNS", () => {
    const dns = ["dns:53/TCP", "dns:53/UDP"];
    const table = Object.fromEntries(workloads().map((w) => [w.metadata.name, allowedDestinations(w.spec.template.metadata.labels)]));
    expect(table).toEqual({
      nats: [...dns, "nats:cluster"],
      ingest: [...dns, "nats:client"],
      sequencer: [...dns, "nats:client"],
      api: [...dns, "nats:client"],
    });
    // A pod of the namespace that is none of these (no label, or another app's) reaches nothing at all.
    expect(allowedDestinations({})).toEqual([]);
    expect(allowedDestinations({ "app.kubernetes.io/name": "debug" })).toEqual([]);
  });

  it("lets the public reach only ingest and the API, NATS clients only the services, routes only NATS, scrapes only the monitoring namespace", () => {
    const table: Record<string, string[]> = {};
    for (const w of workloads()) {
      for (const port of portNames(w)) table[`${w.metadata.name}:${port}`] = allowedSources(w, port);
    }
    expect(table).toEqual({
      "ingest:http": ["any"],
      "api:http": ["any"],
      "sequencer:ops": ["namespace:monitoring"],
      "nats:client": ["api", "ingest", "sequencer"],
      "nats:cluster": ["nats"],
      "nats:monitor": ["namespace:monitoring"],
      "nats:metrics": ["namespace:monitoring"],
    });
  });

  it("names only ports the pods declare in its policies, so none is silently open or shut", () => {
    const declared = new Set(workloads().flatMap((w) => [...portNames(w)]));
    for (const p of ofKind<Policy>("NetworkPolicy")) {
      // Egress to this namespace's pods names their ports too (DNS, another namespace's, goes by number).
      for (const rule of p.spec.egress ?? []) {
        if (!(rule.to ?? []).some((peer) => !peer.namespaceSelector)) continue;
        for (const r of rule.ports ?? []) expect(declared, `${p.metadata.name}: egress port ${r.port}`).toContain(r.port);
      }
      for (const rule of p.spec.ingress ?? []) {
        for (const r of rule.ports ?? []) {
          expect(typeof r.port, `${p.metadata.name}: ports by name`).toBe("string");
          // `ops` is the metrics port ingest and the API move to; naming it ahead is harmless.
          if (r.port !== "ops") expect(declared, `${p.metadata.name}: port ${r.port}`).toContain(r.port);
        }
      }
    }
  });

  it("never places two NATS servers on one node, and spreads them over zones", () => {
    const spec = named<Workload>("StatefulSet", "nats").spec.template.spec;
    expect(spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: { "app.kubernetes.io/name": "nats" } } },
    ]);
    const spread = spec.topologySpreadConstraints ?? [];
    expect(spread.map((c) => c.topologyKey)).toContain("topology.kubernetes.io/zone");
    for (const c of spread) expect(c.labelSelector.matchLabels).toEqual({ "app.kubernetes.io/name": "nats" });
  });

  it("mounts no service account token in any pod, and gives every workload its own account", () => {
    const accounts = new Set<string>();
    for (const w of workloads()) {
      const spec = w.spec.template.spec;
      expect(spec.automountServiceAccountToken, `${w.kind}/${w.metadata.name}`).toBe(false);
      expect(spec.serviceAccountName, `${w.kind}/${w.metadata.name}`).toBeDefined();
      accounts.add(spec.serviceAccountName!);
    }
    expect(accounts.size).toBe(workloads().length);
    for (const sa of ofKind<K8sObject & { automountServiceAccountToken?: boolean }>("ServiceAccount")) {
      expect(sa.automountServiceAccountToken, `ServiceAccount/${sa.metadata.name}`).toBe(false);
    }
  });

  it("gives each service its own NATS user from its own Secret, with the inbox its permissions allow, and no other credentials", () => {
    const accountsConf = dataOf(named("ConfigMap", "nats-accounts"))["accounts.conf"]!;
    for (const service of ["ingest", "sequencer", "api"]) {
      const container = named<Workload>("Deployment", service).spec.template.spec.containers[0]!;
      const secrets = [
        ...(container.envFrom ?? []).flatMap((f) => (f.secretRef ? [f.secretRef.name] : [])),
        ...(container.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : [])),
      ];
      expect(secrets, service).toEqual([`nats-${service}-credentials`]);
      const env = containerEnvironment(objects, container, `${service}-0`);
      expect(env["NATS_USER"]).toBe(service);
      expect(env["NATS_INBOX_PREFIX"]).toBe(`_INBOX_${service}`);
      expect(accountsConf).toContain(`user: ${service}\n`);
      // Its inbox first; the API also follows the state bucket's republished entries (test/nats-permissions.test.ts holds the rest).
      expect(accountsConf).toContain(`subscribe: { allow: ["${env["NATS_INBOX_PREFIX"]}.>"`);
    }
    // The servers know every user's password, from the same Secrets.
    const nats = named<Workload>("StatefulSet", "nats").spec.template.spec.containers.find((c) => c.name === "nats")!;
    const serverEnv = containerEnvironment(objects, nats, "nats-0");
    for (const [variable, secret] of [
      ["NATS_INGEST_PASSWORD", "nats-ingest-credentials"],
      ["NATS_API_PASSWORD", "nats-api-credentials"],
      ["NATS_SEQUENCER_PASSWORD", "nats-sequencer-credentials"],
      ["NATS_ADMIN_PASSWORD", "nats-admin-credentials"],
    ] as const) {
      expect(serverEnv[variable], variable).toBe(dataOf(named("Secret", secret))["NATS_PASSWORD"]);
      expect(accountsConf).toContain(`password: $${variable}\n`);
    }
    // Distinct passwords, or one leaked Secret would open every user.
    const passwords = ["ingest", "api", "sequencer", "admin"].map((u) => dataOf(named("Secret", `nats-${u}-credentials`))["NATS_PASSWORD"]);
    expect(new Set(passwords).size).toBe(passwords.length);
  });
});

describe("NATS configuration deploy/k8s/nats/nats.conf", () => {
  const nats = named<Workload>("StatefulSet", "nats");
  const natsContainer = nats.spec.template.spec.containers.find((c) => c.name === "nats")!;
  /** What the server finds in /etc/nats: nats.conf, its TLS includes, accounts.conf. */
  const configFiles = volumeFiles(objects, nats.spec.template.spec.volumes!.find((v) => v.name === "config")!);
  const conf = configFiles["nats.conf"]!;
  const serverEnvFor = (pod: string) => containerEnvironment(objects, natsContainer, pod);
  const serverEnv = serverEnvFor("nats-0");
  const admin = dataOf(named("Secret", "nats-admin-credentials"));
  const ingest = dataOf(named("Secret", "nats-ingest-credentials"));
  const processes: ChildProcess[] = [];
  const dirs: string[] = [];
  const writeConfigDir = (dir: string, nats: string = conf) => {
    for (const [name, text] of Object.entries(configFiles)) writeFileSync(join(dir, name), name === "nats.conf" ? nats : text);
  };

  afterAll(async () => {
    await stopChildren(processes);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("runs the NATS line the tests run", () => {
    const nats = named<Workload>("StatefulSet", "nats");
    const image = nats.spec.template.spec.containers.find((c) => c.name === "nats")!.image!;
    const [major, minor] = assertNatsServerInstalled().split(".");
    expect(image, "pin the image to the line `npm test` installs (scripts/prereqs.mjs NATS_PINNED_VERSION)").toMatch(
      new RegExp(`^nats:${major}\\.${minor}\\.\\d+-alpine$`),
    );
  });

  it("is accepted by nats-server with the pod's environment, and refused without it", () => {
    assertNatsServerInstalled();
    const dir = mkdtempSync(join(tmpdir(), "rockets-natsconf-"));
    dirs.push(dir);
    const file = join(dir, "nats.conf");
    writeConfigDir(dir);
    const env = { ...process.env, ...serverEnv };
    const ok = spawnSync(NATS_SERVER_BIN, ["-c", file, "-t"], { encoding: "utf8", env });
    expect(ok.stderr + ok.stdout).toMatch(/valid/);
    expect(ok.status).toBe(0);
    const missing = spawnSync(NATS_SERVER_BIN, ["-c", file, "-t"], { encoding: "utf8", env: { PATH: process.env["PATH"] } });
    expect(missing.status).not.toBe(0);
  });

  it("forms a 3-node JetStream cluster with its route password: the streams' account has JetStream, the system account sees every server, no one else gets in", async () => {
    assertNatsServerInstalled();
    const dir = mkdtempSync(join(tmpdir(), "rockets-natsconf-"));
    dirs.push(dir);
    const nodes = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => ({ i, client: await freePort(), cluster: await freePort(), monitor: await freePort() })),
    );
    const members = nodes.slice(0, 3);
    /**
     * Starts a server from the files as shipped; only what differs between
     * Kubernetes and one machine changes: the store and pid paths and the
     * route port (in the text), the client and monitoring addresses (by
     * flags), and each route's host:port (in the pod's environment, where the
     * routes and their credentials come from). `routeCredentials` says what
     * this server presents when it dials: the Secret's (a member), another
     * password, or none (a pod without the Secret).
     */
    const start = (n: (typeof nodes)[number], pod: string, routeCredentials: "secret" | "wrong" | "none") => {
      const nodeDir = join(dir, `nats-${n.i}`);
      mkdirSync(nodeDir);
      const file = join(nodeDir, "nats.conf");
      const local = conf
        .replace(/^(\s*)store_dir: \/data$/m, `$1store_dir: ${join(dir, `store-${n.i}`)}`)
        .replace(/^pid_file: \/var\/run\/nats\/nats\.pid$/m, `pid_file: ${join(dir, `nats-${n.i}.pid`)}`)
        .replace(/^(\s+)port: 6222$/m, `$1port: ${n.cluster}`);
      expect(local.match(new RegExp(dir, "g"))?.length, "both paths replaced").toBe(2);
      expect(local).toContain(`port: ${n.cluster}`);
      writeConfigDir(nodeDir, local);
      const env = serverEnvFor(pod);
      if (routeCredentials === "wrong") env["NATS_ROUTE_PASSWORD"] = "not-the-route-password";
      members.forEach((m, j) => {
        const url = new URL(env[`NATS_ROUTE_${j}`]!);
        url.host = `127.0.0.1:${m.cluster}`;
        if (routeCredentials === "wrong") url.password = "not-the-route-password";
        if (routeCredentials === "none") url.username = url.password = "";
        env[`NATS_ROUTE_${j}`] = url.toString();
      });
      const args = ["-c", file, "-a", "127.0.0.1", "-p", String(n.client), "-m", String(n.monitor)];
      const child = spawn(NATS_SERVER_BIN, args, { env: { ...process.env, ...env }, stdio: "ignore" });
      processes.push(child);
    };
    for (const n of members) start(n, `nats-${n.i}`, "secret");
    const deadline = Date.now() + 30_000;
    for (const n of members) {
      for (;;) {
        const healthy = await fetch(`http://127.0.0.1:${n.monitor}/healthz`).then((r) => r.ok, () => false);
        if (healthy) break;
        if (Date.now() > deadline) throw new Error(`nats-${n.i} not healthy within 30 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const jsz = (await (await fetch(`http://127.0.0.1:${nodes[0]!.monitor}/jsz`)).json()) as {
      meta_cluster?: { name: string; cluster_size: number };
      config?: { sync_always?: boolean };
    };
    expect(jsz.meta_cluster).toMatchObject({ name: "rockets", cluster_size: 3 });
    // A 2xx must survive power loss: every write is on disk before it is acknowledged.
    expect(jsz.config?.sync_always).toBe(true);
    const varz = (await (await fetch(`http://127.0.0.1:${nodes[1]!.monitor}/varz`)).json()) as { server_name: string };
    expect(varz.server_name).toBe("nats-1");

    // Two servers that reach the route port without the route password (the NetworkPolicy would stop a pod
    // without the NATS label first, where the CNI enforces it): one presents another password, one none.
    start(nodes[3]!, "nats-intruder-wrong", "wrong");
    start(nodes[4]!, "nats-intruder-none", "none");
    await new Promise((r) => setTimeout(r, 3000));
    const routez = async (n: (typeof nodes)[number]) =>
      ((await (await fetch(`http://127.0.0.1:${n.monitor}/routez`)).json()) as { routes: Array<{ remote_name?: string }> }).routes.map((r) => r.remote_name);
    for (const n of members) {
      expect([...new Set(await routez(n))].sort(), `routes of nats-${n.i}`).toEqual(members.filter((o) => o !== n).map((o) => `nats-${o.i}`).sort());
    }
    for (const outsider of nodes.slice(3)) expect(await routez(outsider), `routes of outsider ${outsider.i}`).toEqual([]);

    const server = `127.0.0.1:${nodes[2]!.client}`;
    const nc = await connect({ servers: server, user: admin["NATS_USER"], pass: admin["NATS_PASSWORD"] });
    const account = await (await jetstreamManager(nc)).getAccountInfo();
    expect(account.limits).toBeDefined();
    await nc.close();
    // A service's user gets in with its own Secret (what it may do: test/nats-permissions.test.ts).
    const service = await connect({ servers: server, user: ingest["NATS_USER"], pass: ingest["NATS_PASSWORD"], inboxPrefix: "_INBOX_ingest" });
    await service.flush();
    await service.close();
    const sys = await connect({ servers: server, user: serverEnv["NATS_SYSTEM_USER"], pass: serverEnv["NATS_SYSTEM_PASSWORD"] });
    const pongs: string[] = [];
    const inbox = sys.subscribe("_INBOX.rockets-ping", {
      callback: (_err, msg) => {
        pongs.push(msg.string());
      },
    });
    sys.publish("$SYS.REQ.SERVER.PING", "", { reply: "_INBOX.rockets-ping" });
    const until = Date.now() + 5000;
    while (pongs.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(pongs).toHaveLength(3);
    inbox.unsubscribe();
    await sys.close();
    await expect(connect({ servers: server, reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: server, user: ingest["NATS_USER"], pass: "wrong", reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: server, user: ingest["NATS_USER"], pass: admin["NATS_PASSWORD"], reconnect: false })).rejects.toThrow(/authorization/i);
  }, 60_000);
});
