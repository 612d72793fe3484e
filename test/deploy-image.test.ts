// The container image: a multi-stage Dockerfile whose runtime stage has
// production dependencies only and a non-root user, a build context
// (.dockerignore) that holds what the Dockerfile copies and nothing else of
// note, and, without Docker, the part that matters at run time: the build
// command compiles the services and the image's entrypoint starts each
// compiled service, which serves, stops cleanly on SIGTERM and exits 0.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, NatsServer } from "../internal/testing/nats-server.js";
import { ROOT } from "./deploy/manifests.js";
import { SERVICES } from "./deploy/service-contracts.js";
import { testAuthEnv } from "../internal/testing/api-keys.js";
import { scrape } from "../internal/testing/metrics.js";

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function readDockerfile(): Stage[] {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const stages: Stage[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (op!.toUpperCase() === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ op: op!.toUpperCase(), args });
    }
  }
  return stages;
}

/** .dockerignore semantics: last matching pattern wins, `!` re-includes, a pattern matching a parent directory matches its files. */
function dockerignore(): (path: string) => boolean {
  const patterns = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const glob = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      const source = glob
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => {
          if (part === "**/") return "(?:.*/)?";
          if (part === "**") return ".*";
          if (part === "*") return "[^/]*";
          if (part === "?") return "[^/]";
          return part.replace(/[.+^${}()|[\]\\]/g, "\\$&");
        })
        .join("");
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const parts = path.split("/");
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const { negate, regex } of patterns) {
      if (candidates.some((c) => regex.test(c))) excluded = !negate;
    }
    return !excluded;
  };
}

function trackedFiles(): string[] {
  return spawnSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" }).stdout.split("\n").filter(Boolean);
}

const stages = readDockerfile();
const runtime = stages.at(-1)!;
const build = stages[0]!;

describe("Dockerfile", () => {
  it("builds in one stage and runs from another, on a pinned Node of the major the package declares", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const engines = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } }).engines.node;
    const major = /(\d+)/.exec(engines)![1];
    const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(ROOT, "Dockerfile"), "utf8"))?.[1];
    for (const stage of stages) {
      const image = stage.from === "${NODE_IMAGE}" ? arg : stage.from;
      // A full version and an Alpine release: a moving tag (node:20-alpine) rebuilds into another runtime.
      expect(image).toMatch(new RegExp(`^node:${major}\\.\\d+\\.\\d+-alpine\\d+\\.\\d+$`));
    }
  });

  it("compiles with `npm ci` and `npm run build`, and installs production dependencies only to run", () => {
    const runs = (stage: Stage) => stage.instructions.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs(build).some((r) => /^npm ci\b/.test(r) && !r.includes("--omit=dev"))).toBe(true);
    expect(runs(build)).toContain("npm run build");
    expect(runs(runtime).some((r) => /^npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(runs(runtime).some((r) => r.includes("npm run build") || r.includes("tsc"))).toBe(false);
    const copies = runtime.instructions.filter((i) => i.op === "COPY").map((i) => i.args);
    expect(copies).toContain(`--from=${build.name} /src/dist ./dist`);
  });

  it("runs as a numeric non-root user, through the entrypoint that picks the service", () => {
    const user = runtime.instructions.filter((i) => i.op === "USER").at(-1)?.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    const entrypoint = JSON.parse(runtime.instructions.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    const copied = runtime.instructions.find((i) => i.op === "COPY" && i.args.endsWith(` ${entrypoint[0]}`));
    expect(copied?.args).toMatch(/--chmod=0?755 deploy\/docker\/entrypoint\.sh /);
  });

  it("copies only what the build context holds, and the context leaves out tests, dependencies and history", () => {
    const included = dockerignore();
    const files = trackedFiles();
    for (const stage of stages) {
      for (const copy of stage.instructions.filter((i) => i.op === "COPY" && !i.args.includes("--from="))) {
        const sources = copy.args.split(/\s+/).filter((a) => !a.startsWith("--")).slice(0, -1);
        for (const source of sources) {
          expect(existsSync(join(ROOT, source)), `COPY ${source} exists`).toBe(true);
          if (statSync(join(ROOT, source)).isDirectory()) {
            const inside = files.filter((f) => f.startsWith(`${source}/`) && f.endsWith(".ts"));
            const wanted = inside.filter((f) => !f.endsWith(".test.ts") && !f.startsWith("internal/testing/"));
            expect(wanted.filter((f) => !included(f)), `${source}: sources left out of the context`).toEqual([]);
            expect(inside.filter((f) => f.endsWith(".test.ts") && included(f)), `${source}: tests in the context`).toEqual([]);
          } else {
            expect(included(source), `${source} is in the build context`).toBe(true);
          }
        }
      }
    }
    for (const path of ["node_modules/fastify/package.json", ".git/HEAD", "dist/cmd/api/main.js", "test/deploy-image.test.ts", "internal/testing/nats-server.ts", "docs/operations.md"]) {
      expect(included(path), path).toBe(false);
    }
  });
});

describe("the image's command: compiled services started through deploy/docker/entrypoint.sh", () => {
  const appDir = join(ROOT, ".tmp", `image-${process.pid}`);
  let nats: NatsServer;

  beforeAll(async () => {
    rmSync(appDir, { recursive: true, force: true });
    mkdirSync(appDir, { recursive: true });
    // `npm run build` with the output somewhere private: other work in this tree may use dist/.
    const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", "--outDir", join(appDir, "dist")], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (tsc.status !== 0) throw new Error(`build failed:\n${tsc.stdout}${tsc.stderr}`);
    nats = await NatsServer.start();
  }, 120_000);

  afterAll(async () => {
    await nats?.dispose();
    rmSync(appDir, { recursive: true, force: true });
  });

  it("compiles each service to dist/cmd/<service>/main.js, without tests or the test harness", () => {
    for (const service of SERVICES) expect(existsSync(join(appDir, "dist", "cmd", service, "main.js")), service).toBe(true);
    expect(existsSync(join(appDir, "dist", "internal", "testing"))).toBe(false);
    const all = spawnSync("find", [join(appDir, "dist"), "-name", "*.test.js"], { encoding: "utf8" }).stdout.trim();
    expect(all).toBe("");
  });

  it("refuses a service it does not know, with usage", () => {
    const run = spawnSync("sh", [join(ROOT, "deploy", "docker", "entrypoint.sh"), "bogus"], { encoding: "utf8", env: { ...process.env, APP_DIR: appDir } });
    expect(run.status).toBe(64);
    expect(run.stderr).toMatch(/usage: rockets <ingest\|sequencer\|api>/);
  });

  /** Starts one compiled service the way the image does; resolves with its exit code after it became ready and got SIGTERM. */
  async function startAndStop(service: (typeof SERVICES)[number]): Promise<{ code: number | null; metrics: string; output: string }> {
    const port = await freePort();
    const child = spawn("sh", [join(ROOT, "deploy", "docker", "entrypoint.sh"), service], {
      cwd: appDir,
      env: { ...process.env, ...testAuthEnv(), APP_DIR: appDir, NATS_URL: nats.url, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", NODE_ENV: "production" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let metrics = "";
    try {
      const deadline = Date.now() + 45_000;
      for (;;) {
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        if (ready) break;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${service} did not become ready:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      metrics = await scrape(`http://127.0.0.1:${port}`);
    } finally {
      child.kill("SIGTERM");
    }
    return { code: await exited, metrics, output };
  }

  it("starts each compiled service, which becomes ready, serves its metrics and exits 0 on SIGTERM", async () => {
    const results = await Promise.all(SERVICES.map(startAndStop));
    results.forEach((r, i) => {
      expect(r.metrics, SERVICES[i]).toContain(`service="${SERVICES[i]}"`);
      // The entrypoint execs node, so the signal reaches the service itself.
      expect(r.code, `${SERVICES[i]}:\n${r.output}`).toBe(0);
    });
  }, 90_000);
});
