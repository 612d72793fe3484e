// One supervised child process: started, its output prefixed, restarted with
// a growing delay when it exits on its own (reset once it has stayed up a
// while), and stopped with SIGTERM (SIGKILL after a grace period).
//
// Children run in their own process group (`detached`), so a Ctrl-C at the
// terminal reaches only the supervisor, which then stops them in order:
// services first, nats-server last.

import { spawn } from "node:child_process";
import { linePrinter } from "./log-lines.mjs";

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
/** A child that stayed up this long is considered healthy again: the next crash restarts it at once-ish. */
const HEALTHY_AFTER_MS = 30_000;

export class Supervised {
  /**
   * @param {string} name
   * @param {{ cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, color: boolean, stopTimeoutMs?: number }} options
   */
  constructor(name, options) {
    this.name = name;
    this.options = options;
    this.printer = linePrinter(name, options.out, { color: options.color });
    this.child = undefined;
    this.stopping = false;
    this.backoffMs = MIN_BACKOFF_MS;
    this.restartTimer = undefined;
    this.startedAt = 0;
    this.restarts = 0;
  }

  get pid() {
    return this.child?.pid;
  }

  start() {
    if (this.stopping) return;
    const { cmd, args, cwd, env } = this.options;
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child = child;
    this.startedAt = Date.now();
    child.stdout.on("data", (c) => this.printer.write(c));
    child.stderr.on("data", (c) => this.printer.write(c));
    child.on("error", (err) => this.printer.say(`could not start: ${err.message}`));
    child.on("exit", (code, signal) => {
      this.printer.flush();
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.backoffMs = MIN_BACKOFF_MS;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
      this.restarts += 1;
      this.printer.say(`exited (${signal ?? `code ${code}`}); restarting in ${delay / 1000} s`);
      this.restartTimer = setTimeout(() => this.start(), delay);
    });
    this.printer.say(`started (pid ${child.pid})`);
  }

  /** Stops for good: no more restarts. Resolves once the process is gone. */
  async stop(signal = "SIGTERM") {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve([code, sig])));
    child.kill(signal);
    const timeoutMs = this.options.stopTimeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      this.printer.say(`still running ${timeoutMs / 1000} s after ${signal}; killing it`);
      child.kill("SIGKILL");
    }, timeoutMs);
    const [code, sig] = await exited;
    clearTimeout(timer);
    this.printer.say(`stopped (${sig ?? `code ${code}`})`);
  }

  /** Last resort when the supervisor itself is going away abruptly. */
  killNow() {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
