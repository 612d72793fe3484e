import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNatsServerInstalled, NATS_MIN_VERSION } from "./nats-server.js";
import { REPO_ROOT } from "./service-process.js";

const dir = mkdtempSync(join(tmpdir(), "rockets-fake-nats-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the harness's check in a fresh process against a stand-in binary that prints `version`. */
function checkWith(version: string): { status: number | null; stderr: string } {
  const bin = join(dir, `nats-server-${version}`);
  writeFileSync(bin, `#!/bin/sh\necho "nats-server: v${version}"\n`);
  chmodSync(bin, 0o755);
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "-e", 'import("./internal/testing/nats-server.ts").then((m) => m.assertNatsServerInstalled())'],
    { cwd: REPO_ROOT, env: { ...process.env, NATS_SERVER_BIN: bin }, encoding: "utf8" },
  );
  return { status: r.status, stderr: r.stderr };
}

describe("the test harness's nats-server", () => {
  it("is the project's line: at least 2.11", () => {
    const [major, minor] = assertNatsServerInstalled().split(".").map(Number);
    expect(major! * 1000 + minor!).toBeGreaterThanOrEqual(NATS_MIN_VERSION[0] * 1000 + NATS_MIN_VERSION[1]);
  });

  it("refuses an older server with a message that says what to do", () => {
    const old = checkWith("2.9.10");
    expect(old.status).not.toBe(0);
    expect(old.stderr).toMatch(/is v2\.9\.10; the project needs nats-server >= 2\.11 .*npm test` installs it/);
    expect(checkWith("2.11.0").status).toBe(0);
  });
});
