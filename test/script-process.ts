// A repository script (`npm start`, `npm run cluster`) run as a user runs it,
// for the tests of those commands: its whole output kept for assertions, a
// wait for a line, a signal (or a terminal's Ctrl-C) and its exit code, and a
// last-resort cleanup that kills every child it reported having started.

import { spawn, type ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../internal/testing/service-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ScriptProcess {
  output = "";
  private constructor(
    private readonly script: string,
    private readonly child: ChildProcess,
  ) {
    const keep = (c: Buffer) => (this.output += c.toString());
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
  }

  /** Runs `node <script>` from the repository root with the test's environment plus `env`. */
  static launch(script: string, env: Record<string, string>): ScriptProcess {
    const child = spawn(process.execPath, [script], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new ScriptProcess(script, child);
  }

  /**
   * Runs `npm run <name>` the way a terminal does: in a process group of its
   * own, which interrupt() signals as a whole (npm, and the script npm runs),
   * as a Ctrl-C does.
   */
  static launchWithNpm(name: string, env: Record<string, string>): ScriptProcess {
    const child = spawn("npm", ["run", "--silent", name], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    return new ScriptProcess(`npm run ${name}`, child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exitCode(): number | null {
    return this.child.exitCode;
  }

  /** Resolves with the exit code once it exits by itself (null when a signal ended it); rejects after `timeoutMs`. */
  async exited(timeoutMs: number): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.child.exitCode === null && this.child.signalCode === null) {
      if (Date.now() > deadline) throw new Error(`${this.script} still running after ${timeoutMs} ms:\n${this.output}`);
      await sleep(50);
    }
    return this.child.exitCode;
  }

  /** A Ctrl-C at the terminal: SIGINT to the whole process group (launchWithNpm). */
  async interrupt(timeoutMs = 60_000): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.once("exit", (code) => resolve(code)));
    process.kill(-this.child.pid!, "SIGINT");
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (result === "timeout") throw new Error(`${this.script} still running ${timeoutMs} ms after Ctrl-C:\n${this.output}`);
    return result;
  }

  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.output);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`${this.script} exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await sleep(100);
    }
  }

  /** Every child pid it reported, for last-resort cleanup. */
  pids(): number[] {
    return [...this.output.matchAll(/started \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 60_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once("exit", (code) => resolve(code)));
    this.child.kill(signal);
    const result = await Promise.race([exited, sleep(timeoutMs).then(() => "timeout" as const)]);
    if (result === "timeout") throw new Error(`${this.script} still running ${timeoutMs} ms after ${signal}:\n${this.output}`);
    return result;
  }

  /** Leaves nothing running, whatever happened in the test. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // not a process group of its own, or already gone
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** Retries `attempt` every 100 ms until it returns a value; fails naming `what` and the last error. */
export async function poll<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`${what} not seen within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
}


/** SIGTERMs every child still running and resolves once all have exited. */
export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once("exit", () => resolve());
          p.kill("SIGTERM");
        }),
    ),
  );
}
