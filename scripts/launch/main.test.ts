// The load program's command line as a person meets it: pointed at nothing,
// it says so at once instead of retrying silently; verifying against a
// system that kept an earlier launch's rockets, it says why they cannot
// match and what to do; given a URL with a key in its userinfo, it sends
// the key as Go's client does (Basic auth) and never prints it.

import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../internal/testing/nats-server.js";
import { REPO_ROOT } from "../../internal/testing/service-process.js";
import { DEFAULTS } from "./flags.js";
import { planLaunch } from "./generator.js";

const running: ChildProcess[] = [];
let server: http.Server | undefined;
afterEach(async () => {
  for (const c of running.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

function launch(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/launch/main.ts", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  running.push(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (c: Buffer) => (out.stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out.stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, out, exited };
}

async function until(what: string, timeoutMs: number, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("npm run launch", () => {
  it("warns at once, naming the URL, when the target refuses connections", async () => {
    const url = `http://127.0.0.1:${await freePort()}/messages`;
    const run = launch([url, "--max-messages", "10"]);
    await until("the warning", 15_000, () => run.out.stderr.includes("WARN"));
    expect(run.out.stderr).toMatch(new RegExp(`WARN +cannot reach ${url} \\(ECONNREFUSED, connection refused: nothing listens there\\): is the system running there`));
    expect(run.out.stderr.match(/WARN/g)).toHaveLength(1);
    run.child.kill("SIGINT");
    await run.exited;
  }, 30_000);

  it("says the API already held these rockets, before and after, when a verification against kept data fails", async () => {
    const args = { seed: 7, maxMessages: 40, rockets: 4 };
    const plan = planLaunch({ ...DEFAULTS, ...args });
    // A system that accepts every message and holds each rocket as an earlier, longer launch left it.
    server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (req.method === "POST") return res.writeHead(202).end();
        const channel = decodeURIComponent(req.url!.split("/").pop()!);
        const kept = plan.expected.get(channel);
        if (!kept) return res.writeHead(404).end("{}");
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ...kept, lastMessageNumber: 500, pendingMessages: 0 }));
      });
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const run = launch([`${base}/messages`, "--seed", "7", "--max-messages", "40", "--rockets", "4", "--verify", base, "--verify-timeout", "1s"]);
    expect(await run.exited).toBe(1);
    expect(run.out.stderr).toMatch(new RegExp(`WARN +4 of these 4 rockets already exist at ${base} \\(from an earlier launch with --seed 7\\?\\)`));
    expect(run.out.stderr).toMatch(/lastMessageNumber: expected \d+, got 500/);
    expect(run.out.stderr).toMatch(
      /ERROR +4 of these 4 rockets were already in the API before this launch .* use another --seed \(e\.g\. --seed 8\), or restart the system on a fresh DATA_DIR/,
    );
    expect(run.out.stdout).toMatch(/NOT settled after .* \(0\/4 rockets exact\)/);
  }, 30_000);

  it("sends a key in the URL's userinfo as Basic auth, like Go's client, --key as Bearer, and prints neither", async () => {
    const key = "k3y-with_chars-0123456789abcdefABCDEF0123456";
    const seen: Array<{ method: string; url: string; authorization: string | undefined }> = [];
    server = http.createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
      req.resume();
      req.on("end", () => res.writeHead(req.method === "POST" ? 202 : 404).end("{}"));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const run = launch([`http://rockets:${key}@127.0.0.1:${port}/messages`, "--max-messages", "5", "--rockets", "1"]);
    expect(await run.exited).toBe(0);
    const basic = `Basic ${Buffer.from(`rockets:${key}`).toString("base64")}`;
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(5);
    expect(seen.every((r) => r.url === "/messages" && r.authorization === basic)).toBe(true);
    expect(run.out.stdout + run.out.stderr).not.toContain(key);

    seen.length = 0;
    const bearer = launch([`http://127.0.0.1:${port}/messages`, "--max-messages", "3", "--rockets", "1", "--key", key, "--verify", `http://127.0.0.1:${port}`, "--verify-timeout", "200ms"]);
    await bearer.exited;
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(3);
    expect(seen.filter((r) => r.method === "GET").length).toBeGreaterThan(0);
    expect(seen.every((r) => r.authorization === `Bearer ${key}`)).toBe(true);
    expect(bearer.out.stdout + bearer.out.stderr).not.toContain(key);
  }, 30_000);
});
