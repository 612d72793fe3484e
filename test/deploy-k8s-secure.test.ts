// The secure overlay (deploy/overlays/secure) as kustomize builds it: valid
// objects, the certificate cert-manager issues names what clients and routes
// dial, every NATS server mounts it and every service only its CA; and the
// rendered NATS configuration, run as a 3-node cluster with certificates made
// here, takes only TLS clients and lets no server without the cluster CA's
// certificate open a route.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { readNats } from "../internal/config/common.js";
import { EnvReader } from "../internal/config/env-reader.js";
import { connectionOptions } from "../internal/nats/connection.js";
import { assertNatsServerInstalled, freePort, NATS_SERVER_BIN } from "../internal/testing/nats-server.js";
import { containerEnvironment, ROOT, schemaProblem, unfoldSecretData, volumeFiles, type EnvContainer, type K8sObject } from "./deploy/manifests.js";
import { stopChildren } from "./script-process.js";

const OVERLAY = join(ROOT, "deploy", "overlays", "secure");

interface Container extends EnvContainer {
  name: string;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  configMap?: { name: string };
  projected?: { sources: Array<{ configMap?: { name: string } }> };
}
interface Workload extends K8sObject {
  spec: { template: { spec: { containers: Container[]; volumes?: Volume[] } } };
}
interface Certificate extends K8sObject {
  spec: { secretName: string; dnsNames: string[]; usages?: string[]; isCA?: boolean; issuerRef: { name: string; kind: string } };
}

const kubectl = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;

function build(): K8sObject[] {
  const out = spawnSync("kubectl", ["kustomize", OVERLAY], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`kubectl kustomize ${OVERLAY} failed:\n${out.stderr}`);
  return parseAllDocuments(out.stdout).map((d) => unfoldSecretData(d.toJS() as K8sObject));
}

/** A DNS name matched by a certificate name (a leading `*.` matches one label). */
const covers = (pattern: string, name: string) =>
  pattern.startsWith("*.") ? name.split(".").slice(1).join(".") === pattern.slice(2) && name.split(".").length === pattern.split(".").length : pattern === name;

if (!kubectl) {
  console.warn("\n[deploy-k8s-secure] kubectl is not installed: the secure overlay (patches, merges) is NOT built or checked.\n");
}

describe.skipIf(!kubectl)("secure overlay deploy/overlays/secure (skipped without kubectl)", () => {
  const objects = kubectl ? build() : [];
  const find = <T extends K8sObject>(kind: string, name: string): T => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`no ${kind}/${name} in the overlay`);
    return o as T;
  };
  const nats = () => find<Workload>("StatefulSet", "nats");
  const natsContainer = () => nats().spec.template.spec.containers.find((c) => c.name === "nats")!;
  /** What a NATS server finds in /etc/nats (generated names carry their hash suffix here, as the pod spec does). */
  const configFiles = () => volumeFiles(objects, nats().spec.template.spec.volumes!.find((v) => v.name === "config")!);

  const processes: ChildProcess[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await stopChildren(processes);
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("builds into valid objects: the base's, plus cert-manager's CA, issuers and the servers' certificate", () => {
    const known = objects.filter((o) => !o.apiVersion.startsWith("cert-manager.io/"));
    const problems = known.map((object) => schemaProblem({ source: "kubectl kustomize deploy/overlays/secure", object, generated: false }));
    expect(problems.filter((p) => p !== undefined)).toEqual([]);
    const certManager = objects.filter((o) => o.apiVersion === "cert-manager.io/v1").map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(certManager).toEqual(["Certificate/nats-server", "Certificate/rockets-nats-ca", "Issuer/rockets-nats-ca", "Issuer/rockets-selfsigned"]);
    for (const cert of objects.filter((o): o is Certificate => o.kind === "Certificate")) {
      expect(find("Issuer", cert.spec.issuerRef.name), `${cert.metadata.name}'s issuer`).toBeDefined();
    }
  });

  it("issues the servers' certificate for the names clients and routes dial, for server and client auth", () => {
    const cert = find<Certificate>("Certificate", "nats-server");
    const config = volumeFiles(objects, { configMap: { name: objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("rockets-config"))!.metadata.name } });
    const clientHost = new URL(config["NATS_URL"]!).hostname;
    // The routes are the servers' NATS_ROUTE_<n> (nats.conf names the variables; the URLs carry the route password).
    const serverEnv = containerEnvironment(objects, natsContainer(), "nats-0");
    const routes = [...configFiles()["nats.conf"]!.matchAll(/^\s*\$(NATS_ROUTE_\d+)$/gm)].map((m) => new URL(serverEnv[m[1]!]!).hostname);
    expect(routes).toHaveLength(3);
    for (const name of [clientHost, `${clientHost}.rockets.svc.cluster.local`, ...routes]) {
      expect(cert.spec.dnsNames.some((p) => covers(p, name)), name).toBe(true);
    }
    expect(cert.spec.usages).toEqual(expect.arrayContaining(["server auth", "client auth"]));
  });

  it("mounts the certificate in every NATS server where its TLS blocks read it, and only the CA in every service, which verifies with it", () => {
    const cert = find<Certificate>("Certificate", "nats-server");
    const tlsVolume = nats().spec.template.spec.volumes!.find((v) => v.secret?.secretName === cert.spec.secretName)!;
    expect(tlsVolume).toBeDefined();
    const mount = natsContainer().volumeMounts!.find((m) => m.name === tlsVolume.name)!;
    const files = configFiles();
    for (const name of ["client-tls.conf", "cluster-tls.conf"]) {
      const paths = [...files[name]!.matchAll(/_file: (\S+)/g)].map((m) => m[1]!);
      expect(paths.sort(), name).toEqual([`${mount.mountPath}/ca.crt`, `${mount.mountPath}/tls.crt`, `${mount.mountPath}/tls.key`]);
    }
    expect(files["cluster-tls.conf"]).toMatch(/^\s*verify: true$/m);
    for (const service of ["ingest", "sequencer", "api"]) {
      const spec = find<Workload>("Deployment", service).spec.template.spec;
      const secrets = (spec.volumes ?? []).filter((v) => v.secret?.secretName === cert.spec.secretName);
      expect(secrets.map((v) => v.secret!.items), service).toEqual([[{ key: "ca.crt", path: "ca.crt" }]]);
      const caMount = spec.containers[0]!.volumeMounts!.find((m) => m.name === secrets[0]!.name)!;
      const env = containerEnvironment(objects, spec.containers[0]!, `${service}-0`);
      expect(env["NATS_TLS_CA"], service).toBe(`${caMount.mountPath}/ca.crt`);
    }
  });

  it("runs as a cluster that takes only TLS clients and refuses a route from a server without the cluster CA's certificate", async () => {
    assertNatsServerInstalled();
    const dir = mkdtempSync(join(tmpdir(), "rockets-secure-"));
    dirs.push(dir);
    // A CA and a certificate for the same names as cert-manager's, plus 127.0.0.1 and localhost (the test dials an address, nats.js checks it as localhost); and an outsider's.
    const ssl = (args: string[]) => {
      const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    const cert = find<Certificate>("Certificate", "nats-server");
    const sans = [...cert.spec.dnsNames.map((n) => `DNS:${n}`), "IP:127.0.0.1", "DNS:localhost"].join(",");
    for (const who of ["cluster", "outsider"]) {
      ssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", `/CN=${who}-ca`, "-keyout", `${who}-ca.key`, "-out", `${who}-ca.crt`]);
      ssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${who}-nats`, "-keyout", `${who}.key`, "-out", `${who}.csr`]);
      writeFileSync(join(dir, `${who}.ext`), `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      ssl(["x509", "-req", "-in", `${who}.csr`, "-CA", `${who}-ca.crt`, "-CAkey", `${who}-ca.key`, "-CAcreateserial", "-days", "1", "-extfile", `${who}.ext`, "-out", `${who}.crt`]);
    }
    const files = configFiles();
    const mountPath = natsContainer().volumeMounts!.find((m) => m.mountPath.endsWith("/tls"))!.mountPath;
    const env = containerEnvironment(objects, natsContainer(), "nats-0");
    const nodes = await Promise.all([0, 1, 2, 3].map(async (i) => ({ i, client: await freePort(), cluster: await freePort(), monitor: await freePort() })));
    const start = (n: (typeof nodes)[number], who: "cluster" | "outsider", peers: typeof nodes) => {
      const nodeDir = join(dir, `nats-${n.i}`);
      mkdirSync(nodeDir);
      for (const [name, text] of Object.entries(files)) {
        let local = text.replaceAll(`${mountPath}/tls.crt`, join(dir, `${who}.crt`)).replaceAll(`${mountPath}/tls.key`, join(dir, `${who}.key`));
        local = local.replaceAll(`${mountPath}/ca.crt`, join(dir, `${who}-ca.crt`));
        local = local.replace(/^(\s*)store_dir: \/data$/m, `$1store_dir: ${join(nodeDir, "store")}`).replace(/^pid_file: .*$/m, `pid_file: ${join(nodeDir, "nats.pid")}`);
        writeFileSync(join(nodeDir, name), local);
      }
      const routes = peers.map((o) => `nats://127.0.0.1:${o.cluster}`).join(",");
      const args = ["-c", join(nodeDir, "nats.conf"), "-a", "127.0.0.1", "-p", String(n.client), "-m", String(n.monitor)];
      args.push("--cluster", `nats://127.0.0.1:${n.cluster}`, "--routes", routes);
      const child = spawn(NATS_SERVER_BIN, args, { env: { ...process.env, ...env, POD_NAME: `nats-${n.i}` }, stdio: "ignore" });
      processes.push(child);
    };
    const members = nodes.slice(0, 3);
    for (const n of members) start(n, "cluster", members.filter((o) => o !== n));
    // The outsider dials every member; they must refuse its routes (and it theirs).
    start(nodes[3]!, "outsider", members);
    const routez = async (n: (typeof nodes)[number]) =>
      (await (await fetch(`http://127.0.0.1:${n.monitor}/routez`)).json()) as { routes: Array<{ remote_name?: string }> };
    const deadline = Date.now() + 30_000;
    for (const n of members) {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${n.monitor}/healthz`).then((r) => r.ok, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`nats-${n.i} not healthy within 30 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Give the outsider's routes time to be tried (and refused) several times.
    await new Promise((r) => setTimeout(r, 2000));
    for (const n of members) {
      const remotes = new Set((await routez(n)).routes.map((r) => r.remote_name));
      expect([...remotes].sort(), `routes of nats-${n.i}`).toEqual(members.filter((o) => o !== n).map((o) => `nats-${o.i}`).sort());
    }

    const server = `nats://127.0.0.1:${nodes[0]!.client}`;
    const ingest = { NATS_USER: "ingest", NATS_PASSWORD: env["NATS_INGEST_PASSWORD"]!, NATS_INBOX_PREFIX: "_INBOX_ingest" };
    // Without TLS (no CA configured), or trusting another CA: refused.
    await expect(connect({ servers: server, user: ingest.NATS_USER, pass: ingest.NATS_PASSWORD, reconnect: false })).rejects.toThrow();
    await expect(
      connect({ servers: server, user: ingest.NATS_USER, pass: ingest.NATS_PASSWORD, reconnect: false, tls: { caFile: join(dir, "outsider-ca.crt") } }),
    ).rejects.toThrow();
    // The services' own configuration path: NATS_TLS_CA verifies the server, the user authenticates inside TLS.
    const reader = new EnvReader({ NATS_URL: server, NATS_TLS_CA: join(dir, "cluster-ca.crt"), ...ingest });
    const settings = readNats(reader, "ingest");
    reader.done();
    const nc = await connect({ ...(await connectionOptions(settings)), reconnect: false });
    expect(nc.info?.tls_required).toBe(true);
    await nc.flush();
    await nc.close();
  }, 60_000);
});
