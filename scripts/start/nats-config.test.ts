import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNatsServerInstalled, NATS_SERVER_BIN } from "../../internal/testing/nats-server.js";
import { REPO_ROOT } from "../../internal/testing/service-process.js";
import { renderNatsConfig, type NatsConfigOptions } from "./nats-config.mjs";

const dir = mkdtempSync(join(tmpdir(), "rockets-nats-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** nats-server's own check of a configuration file (`-t`): exit 0 and "is valid", or its parse error. */
function serverAccepts(text: string, env: Record<string, string> = {}): { ok: boolean; output: string } {
  assertNatsServerInstalled();
  const file = join(dir, `${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, text);
  const r = spawnSync(NATS_SERVER_BIN, ["-t", "-c", file], { encoding: "utf8", env: { PATH: process.env["PATH"], ...env } });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

const node: NatsConfigOptions = {
  serverName: "n1",
  host: "127.0.0.1",
  port: 4222,
  monitorPort: 8222,
  storeDir: join(dir, "store with spaces", "n1"),
};

describe("renderNatsConfig", () => {
  it("renders a standalone JetStream node that nats-server accepts, with the server's default sync interval", () => {
    const text = renderNatsConfig(node);
    expect(text).toContain('server_name: "n1"');
    expect(text).toContain('listen: "127.0.0.1:4222"');
    expect(text).toContain('http: "127.0.0.1:8222"');
    expect(text).toContain(`store_dir: ${JSON.stringify(node.storeDir)}`);
    expect(text).not.toContain("sync_interval");
    expect(text).not.toContain("cluster");
    const check = serverAccepts(text);
    expect(check.output).toMatch(/is valid/);
    expect(check.ok).toBe(true);
  });

  it("renders a cluster node with its routes and a chosen sync interval that nats-server accepts", () => {
    const text = renderNatsConfig({
      ...node,
      syncInterval: "always",
      cluster: { name: "rockets-local", port: 6222, routes: ["nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"] },
    });
    expect(text).toContain('sync_interval: "always"');
    expect(text).toMatch(/cluster \{\n {2}name: "rockets-local"\n {2}listen: "127.0.0.1:6222"\n {2}routes: \[\n {4}"nats-route:\/\/127.0.0.1:6223"\n {4}"nats-route:\/\/127.0.0.1:6224"\n {2}\]\n\}/);
    expect(serverAccepts(text).ok).toBe(true);
    expect(serverAccepts(renderNatsConfig({ ...node, syncInterval: "100ms" })).ok).toBe(true);
  });

  it("renders authenticated routes and the accounts include as Kubernetes has them, the secrets read from the environment", () => {
    copyFileSync(join(REPO_ROOT, "deploy", "nats", "accounts.conf"), join(dir, "accounts.conf"));
    const text = renderNatsConfig({ ...node, cluster: { name: "rockets-local", port: 6222, authenticatedRoutes: 2 }, accounts: "./accounts.conf" });
    expect(text).toMatch(/authorization \{\n {4}user: "route"\n {4}password: \$NATS_ROUTE_PASSWORD\n {4}timeout: 2\n {2}\}\n {2}routes: \[\n {4}\$NATS_ROUTE_0\n {4}\$NATS_ROUTE_1\n {2}\]/);
    expect(text).toContain("include ./accounts.conf");
    const env = {
      NATS_ROUTE_PASSWORD: "p",
      NATS_ROUTE_0: "nats-route://route:p@127.0.0.1:6223",
      NATS_ROUTE_1: "nats-route://route:p@127.0.0.1:6224",
      ...Object.fromEntries(["INGEST", "API", "SEQUENCER", "ADMIN", "SYSTEM"].map((u) => [`NATS_${u}_PASSWORD`, "x"])),
      NATS_SYSTEM_USER: "system",
    };
    expect(serverAccepts(text, env).ok).toBe(true);
    // Without the secrets in its environment the server refuses the file: nothing runs with an empty password.
    const withoutRoutePassword = Object.fromEntries(Object.entries(env).filter(([k]) => k !== "NATS_ROUTE_PASSWORD"));
    expect(serverAccepts(text, withoutRoutePassword).ok).toBe(false);
    expect(() => renderNatsConfig({ ...node, accounts: "/etc/accounts.conf" })).toThrow(/accounts must be a file name beside/);
    expect(() => renderNatsConfig({ ...node, cluster: { name: "c", port: 6222, authenticatedRoutes: 0 } })).toThrow(/authenticatedRoutes/);
  });

  it("refuses settings nats-server would misread, naming the setting", () => {
    expect(() => renderNatsConfig({ ...node, serverName: "n 1" })).toThrow(/serverName/);
    expect(() => renderNatsConfig({ ...node, port: 70_000 })).toThrow(/port must be a port number/);
    expect(() => renderNatsConfig({ ...node, monitorPort: 0 })).toThrow(/monitorPort/);
    expect(() => renderNatsConfig({ ...node, storeDir: "" })).toThrow(/storeDir/);
    expect(() => renderNatsConfig({ ...node, syncInterval: "often" })).toThrow(/syncInterval must be "always" or a duration/);
    expect(() => renderNatsConfig({ ...node, cluster: { name: "c", port: 6222, routes: [] } })).toThrow(/cluster.routes/);
    expect(() => renderNatsConfig({ ...node, cluster: { name: "c", port: 6222, routes: ["127.0.0.1:6223"] } })).toThrow(/nats-route:\/\//);
  });
});
