// Reads the deployment files the way their tools do, for the deploy tests:
// YAML documents, a kustomization with everything it includes (files,
// directories with their own kustomization, ConfigMap and Secret generators),
// and checks each Kubernetes object against its kind's schema.
//
// The kustomization loader models only the kustomize features deploy/k8s
// uses and refuses any other, so a check made through it cannot silently miss
// what kustomize would do. Where kubectl is installed, a test compares it with
// `kubectl kustomize`.

import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import ts from "typescript";
import { parse, parseAllDocuments } from "yaml";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { PodMonitor, PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { REPO_ROOT } from "../../internal/testing/service-process.js";

export const ROOT = REPO_ROOT;
export const K8S_DIR = join(ROOT, "deploy", "k8s");

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Manifest {
  /** Repository-relative file the object comes from (the kustomization.yaml for a generated one). */
  source: string;
  object: K8sObject;
  generated: boolean;
}

export function repoPath(path: string): string {
  return relative(ROOT, path).split(sep).join("/");
}

export function readYamlDocuments(file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  return documents
    .map((doc) => {
      const [error] = doc.errors;
      if (error) throw new Error(`${repoPath(file)}: ${error.message}`);
      return doc.toJS() as unknown;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

export function readYaml<T = unknown>(file: string, options: { merge?: boolean } = {}): T {
  return parse(readFileSync(file, "utf8"), { merge: options.merge ?? false }) as T;
}

interface Generator {
  name: string;
  files?: string[];
  literals?: string[];
  options?: { disableNameSuffixHash?: boolean; labels?: Record<string, string>; annotations?: Record<string, string> };
}

interface Kustomization {
  resources?: string[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

const MODELLED_FIELDS = new Set(["apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "secretGenerator"]);

/** kustomize's load restrictor: a kustomization reads files only inside its own directory. */
function insideOrThrow(dir: string, path: string, kustomization: string): void {
  const rel = relative(dir, path);
  if (rel.startsWith("..") || resolve(dir, rel) !== path) {
    throw new Error(`${repoPath(kustomization)}: ${repoPath(path)} is outside the kustomization's directory; kustomize refuses it`);
  }
}

function generatorData(dir: string, kustomization: string, generator: Generator): Record<string, string> {
  const data: Record<string, string> = {};
  for (const entry of generator.files ?? []) {
    const eq = entry.indexOf("=");
    const key = eq > 0 ? entry.slice(0, eq) : basename(entry);
    const path = resolve(dir, eq > 0 ? entry.slice(eq + 1) : entry);
    insideOrThrow(dir, path, kustomization);
    if (!existsSync(path)) throw new Error(`${repoPath(kustomization)}: generator ${generator.name} reads ${entry}, which does not exist`);
    data[key] = readFileSync(path, "utf8");
  }
  for (const literal of generator.literals ?? []) {
    const eq = literal.indexOf("=");
    if (eq <= 0) throw new Error(`${repoPath(kustomization)}: generator ${generator.name} has a literal without KEY=: ${literal}`);
    data[literal.slice(0, eq)] = literal.slice(eq + 1);
  }
  return data;
}

function generated(kind: "ConfigMap" | "Secret", generator: Generator, data: Record<string, string>): K8sObject {
  const metadata: K8sObject["metadata"] = { name: generator.name };
  if (generator.options?.labels) metadata.labels = generator.options.labels;
  if (generator.options?.annotations) metadata.annotations = generator.options.annotations;
  if (kind === "ConfigMap") return { apiVersion: "v1", kind, metadata, data };
  const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
  return { apiVersion: "v1", kind, type: "Opaque", metadata, data: encoded };
}

/** Every object a kustomization produces, before kustomize's name suffixes and common labels. */
export function loadKustomization(dir: string = K8S_DIR): Manifest[] {
  const file = join(dir, "kustomization.yaml");
  if (!existsSync(file)) throw new Error(`${repoPath(dir)} has no kustomization.yaml`);
  const kustomization = readYaml<Kustomization & Record<string, unknown>>(file);
  const unmodelled = Object.keys(kustomization).filter((key) => !MODELLED_FIELDS.has(key));
  if (unmodelled.length > 0) {
    throw new Error(`${repoPath(file)} uses ${unmodelled.join(", ")}, which test/deploy/manifests.ts does not model; extend it`);
  }
  const manifests: Manifest[] = [];
  for (const entry of kustomization.resources ?? []) {
    const path = resolve(dir, entry);
    if (!existsSync(path)) throw new Error(`${repoPath(file)}: resource ${entry} does not exist`);
    if (statSync(path).isDirectory()) {
      manifests.push(...loadKustomization(path));
      continue;
    }
    insideOrThrow(dir, path, file);
    for (const doc of readYamlDocuments(path)) manifests.push({ source: repoPath(path), object: doc as K8sObject, generated: false });
  }
  for (const generator of kustomization.configMapGenerator ?? []) {
    manifests.push({ source: repoPath(file), generated: true, object: generated("ConfigMap", generator, generatorData(dir, file, generator)) });
  }
  for (const generator of kustomization.secretGenerator ?? []) {
    manifests.push({ source: repoPath(file), generated: true, object: generated("Secret", generator, generatorData(dir, file, generator)) });
  }
  return manifests;
}

interface Validating {
  validate(): void;
}

const MODELS: Record<string, new (data: never) => Validating> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

export function describe(m: Manifest): string {
  return `${m.source}: ${m.object.kind}/${m.object.metadata?.name}`;
}

/** Validates against the kind's JSON schema; returns the problem, if any. */
export function schemaProblem(m: Manifest): string | undefined {
  const Model = MODELS[`${m.object.apiVersion}/${m.object.kind}`];
  if (!Model) return `${describe(m)}: no schema known for ${m.object.apiVersion} ${m.object.kind} (add it to MODELS)`;
  try {
    new Model(m.object as never).validate();
    return undefined;
  } catch (err) {
    return `${describe(m)}: ${(err as Error).message}`;
  }
}

function typeModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith("monitoring.coreos.com/")) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * The JSON schemas accept fields they do not know, so a misspelt optional
 * field (`readOnlyRootFileSystem`) would pass them and be ignored by the API
 * server. The models' TypeScript types are exact: each object is compiled as
 * a literal of its kind's type, and excess-property errors name the field.
 */
export function unknownFieldProblems(manifests: Manifest[]): string[] {
  const dir = join(ROOT, ".tmp");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `manifest-types-${process.pid}.ts`);
  const imports: string[] = [];
  const body: string[] = [];
  const owners: Array<{ fromLine: number; manifest: Manifest }> = [];
  const imported = new Map<string, string>();
  for (const m of manifests) {
    const key = `${m.object.apiVersion}/${m.object.kind}`;
    let alias = imported.get(key);
    if (alias === undefined) {
      alias = `T${imported.size}`;
      imported.set(key, alias);
      imports.push(`import type { I${m.object.kind} as ${alias} } from ${JSON.stringify(typeModule(m.object.apiVersion, m.object.kind))};`);
    }
    body.push(`export const m${owners.length}: ${alias} = ${JSON.stringify(m.object, null, 1)};`);
    owners.push({ fromLine: 0, manifest: m });
  }
  let line = imports.length;
  body.forEach((text, i) => {
    owners[i]!.fromLine = line;
    line += text.split("\n").length;
  });
  writeFileSync(file, [...imports, ...body].join("\n") + "\n");
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
      if (!d.file || d.start === undefined) return message;
      const at = d.file.getLineAndCharacterOfPosition(d.start).line;
      const owner = [...owners].reverse().find((o) => o.fromLine <= at);
      return owner ? `${describe(owner.manifest)}: ${message}` : message;
    });
  } finally {
    rmSync(file, { force: true });
  }
}

interface EnvSource {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}
export interface EnvContainer {
  env?: EnvSource[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
}

/** A ConfigMap's or Secret's data, Secrets decoded. */
export function objectData(objects: K8sObject[], kind: "ConfigMap" | "Secret", name: string): Record<string, string> {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name}`);
  const data = (o as { data?: Record<string, string> }).data ?? {};
  return kind === "Secret" ? Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()])) : data;
}

/**
 * The environment a container gets, as the kubelet builds it: envFrom
 * sources, then env entries (values, Secret and ConfigMap keys; a fieldRef
 * to the pod's name is `podName`).
 */
export function containerEnvironment(objects: K8sObject[], container: EnvContainer, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, objectData(objects, "ConfigMap", from.configMapRef.name));
    if (from.secretRef) Object.assign(env, objectData(objects, "Secret", from.secretRef.name));
  }
  for (const e of container.env ?? []) {
    const ref = e.valueFrom;
    if (e.value !== undefined) env[e.name] = expandDependentVariables(e.value, env);
    else if (ref?.secretKeyRef) env[e.name] = objectData(objects, "Secret", ref.secretKeyRef.name)[ref.secretKeyRef.key]!;
    else if (ref?.configMapKeyRef) env[e.name] = objectData(objects, "ConfigMap", ref.configMapKeyRef.name)[ref.configMapKeyRef.key]!;
    else if (ref?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
  }
  return env;
}

/**
 * The kubelet's expansion of an env value: `$(NAME)` becomes the value of a
 * variable defined before it, `$$` is a literal `$`, and a reference to a
 * variable not defined (yet) stays as written.
 */
export function expandDependentVariables(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return "$";
    return defined[name] ?? whole;
  });
}

/** The files a pod volume shows (a ConfigMap, or a projection of ConfigMaps), by file name. */
export function volumeFiles(
  objects: K8sObject[],
  volume: { configMap?: { name: string }; projected?: { sources: Array<{ configMap?: { name: string } }> } },
): Record<string, string> {
  const maps = volume.configMap ? [volume.configMap] : (volume.projected?.sources ?? []).flatMap((s) => (s.configMap ? [s.configMap] : []));
  return Object.assign({}, ...maps.map((m) => objectData(objects, "ConfigMap", m.name))) as Record<string, string>;
}

/**
 * kustomize folds a long Secret value's base64 over several lines; the API
 * server's base64 decoding ignores the line breaks, the schema's "byte"
 * format does not: unfolded here as the API server reads it.
 */
export function unfoldSecretData(o: K8sObject): K8sObject {
  const data = (o as { data?: Record<string, string> }).data;
  if (o.kind !== "Secret" || data === undefined) return o;
  return { ...o, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, v.replace(/\s+/g, "")])) };
}
