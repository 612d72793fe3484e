// The comparison servers the benchmarks run beside the system
// (bench/discard-server.ts, bench/reference-server.ts,
// bench/bare-fastify-server.ts), each in a process of its own so that it
// shares no event loop with the load, started the same way: a free port as
// argument, ready once it prints "listening".

import { spawn } from "node:child_process";
import { join } from "node:path";
import { freePort } from "../internal/testing/nats-server.js";
import { REPO_ROOT } from "../internal/testing/service-process.js";

export interface BenchServer {
  /** Its POST /messages URL. */
  url: string;
  /** Its base URL. */
  base: string;
  /** Its pid, to read its CPU time (bench/process-cpu.ts). */
  pid: number | undefined;
  stop(): void;
}

export async function benchServer(script: string): Promise<BenchServer> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", join("bench", script), String(port)], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (c: Buffer) => c.toString().includes("listening") && resolve());
    child.once("exit", (code) => reject(new Error(`${script} exited (${code})`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return { url: `${base}/messages`, base, pid: child.pid, stop: () => child.kill("SIGTERM") };
}
