// `npm run keys` as an operator runs it: the keys it prints are the ones the
// files it writes let in, with the scopes asked for, and a line the services
// would refuse is never written.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ApiKeys, parseApiKeys } from "../internal/http/api-keys.js";
import { REPO_ROOT } from "../internal/testing/service-process.js";

const dir = mkdtempSync(join(tmpdir(), "rockets-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keys = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "scripts/keys.ts", ...args], { cwd: REPO_ROOT, encoding: "utf8" });
const read = (file: string) => new ApiKeys(parseApiKeys(readFileSync(file, "utf8")).entries);

describe("npm run keys", () => {
  it("adds a key with its scopes to a keys file made 0600, printing the key once, and refuses unknown scopes", () => {
    const file = join(dir, "api-keys");
    const first = keys("add", "alice", "read,write", "--file", file);
    expect(first.status, first.stderr).toBe(0);
    const key = /^key: (\S+)$/m.exec(first.stdout)![1]!;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).not.toContain(key);
    expect(read(file).identify(key)).toEqual({ name: "alice", scopes: new Set(["read", "write"]) });

    const refused = keys("add", "bob", "admin", "--file", file);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/scopes must be a comma-separated list of write, read, metrics/);
    expect(read(file).size).toBe(1);
  });

  it("makes a deployment's keys: rocket writes, console reads, Prometheus's key in metrics-key scrapes", () => {
    const out = join(dir, "deploy");
    const run = keys("deploy", out);
    expect(run.status, run.stderr).toBe(0);
    const rocket = /^rocket +\(write\): (\S+)$/m.exec(run.stdout)![1]!;
    const consoleKey = /^console \(read\): +(\S+)$/m.exec(run.stdout)![1]!;
    const listed = read(join(out, "keys"));
    expect(listed.identify(rocket)?.scopes).toEqual(new Set(["write"]));
    expect(listed.identify(consoleKey)?.scopes).toEqual(new Set(["read"]));
    expect(listed.identify(readFileSync(join(out, "metrics-key"), "utf8").trim())?.scopes).toEqual(new Set(["metrics"]));
    expect(run.stdout).not.toContain(readFileSync(join(out, "metrics-key"), "utf8").trim());

    const again = keys("deploy", out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already lists keys/);
    expect(existsSync(join(out, "keys"))).toBe(true);
  });
});
