// One supervised child process: started, its output prefixed, restarted with
// a growing delay when it exits on its own (reset once it has stayed up a
// while), and stopped with SIGTERM (SIGKILL after a grace period).
//
// Children run in their own process group (`detached`), so a Ctrl-C at the
// terminal reaches only the supervisor, which then stops them in order:
// services first, nats-server last.
//
// Not every exit is worth a restart: a service that exits 78 (EX_CONFIG,
// internal/service/exit-codes.ts) refuses its configuration and would refuse
// it again, so it is reported once and left stopped (onGiveUp tells the
// owner); a `restart` option can also decline (nats-server failing before it
// ever got healthy). A child that stops as asked (exit 0, or the signal it
// was sent) is reported as "stopped"; anything else says how it ended.

import { spawn } from "node:child_process";
import { linePrinter } from "./log-lines.mjs";

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
/** A child that stayed up this long is considered healthy again: the next crash restarts it at once-ish. */
const HEALTHY_AFTER_MS = 30_000;
/** internal/service/exit-codes.ts ExitCode.Config. */
export const EXIT_CONFIG = 78;

/**
 * An `onGiveUp` for a service: a configuration it refuses (exit 78) stays
 * refused, so the whole start stops with that code instead of running on without it.
 * @param {string} name
 * @param {(message: string) => void} report
 * @param {(why: string, code: number) => void} stop
 */
export function stopOnRefusedConfig(name, report, stop) {
  return (code) => {
    if (code !== EXIT_CONFIG) return;
    report(`${name} refuses its configuration (exit ${EXIT_CONFIG}, its reason is above); fix it and start again`);
    stop(`${name} cannot start`, EXIT_CONFIG);
  };
}

function ending(code, signal) {
  return signal ?? `code ${code}`;
}

export class Supervised {
  /**
   * @param {string} name
   * @param {{
   *   cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, color: boolean,
   *   stopTimeoutMs?: number,
   *   restart?: (code: number | null, signal: string | null) => boolean,
   *   onSpawn?: (pid: number) => void,
   *   onGiveUp?: (code: number | null, signal: string | null) => void,
   * }} options
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
    /** How the last run ended, while it is not running; undefined when running or never ran. */
    this.lastExit = undefined;
    /** Set once it will not be started again by itself. */
    this.gaveUp = false;
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return this.child !== undefined;
  }

  start() {
    if (this.stopping) return;
    const { cmd, args, cwd, env } = this.options;
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child = child;
    this.lastExit = undefined;
    this.startedAt = Date.now();
    child.stdout.on("data", (c) => this.printer.write(c));
    child.stderr.on("data", (c) => this.printer.write(c));
    child.on("error", (err) => this.printer.say(`could not start: ${err.message}`));
    child.on("exit", (code, signal) => {
      this.printer.flush();
      if (this.child === child) this.child = undefined;
      this.lastExit = { code, signal, at: Date.now() };
      if (this.stopping) return;
      if (code === EXIT_CONFIG) {
        this.printer.say(`exited (code ${code}: its configuration is refused, see above); not restarting`);
        this.giveUp(code, signal);
        return;
      }
      if (this.options.restart && !this.options.restart(code, signal)) {
        this.printer.say(`exited (${ending(code, signal)}); not restarting`);
        this.giveUp(code, signal);
        return;
      }
      if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.backoffMs = MIN_BACKOFF_MS;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
      this.restarts += 1;
      this.printer.say(`exited (${ending(code, signal)}); restarting in ${delay / 1000} s`);
      this.restartTimer = setTimeout(() => this.start(), delay);
    });
    if (child.pid !== undefined) this.options.onSpawn?.(child.pid);
    this.printer.say(`started (pid ${child.pid})`);
  }

  giveUp(code, signal) {
    this.gaveUp = true;
    this.stopping = true;
    this.options.onGiveUp?.(code, signal);
  }

  /** What it is doing, for a person waiting for it: undefined while running. */
  status() {
    if (this.child) return undefined;
    if (!this.lastExit) return "not started";
    const how = ending(this.lastExit.code, this.lastExit.signal);
    return this.gaveUp ? `exited (${how}), not restarted` : `exited (${how}), restarting`;
  }

  /**
   * Stops for good: no more restarts. Resolves once the process is gone, with
   * true when it stopped as asked (exit 0, or the signal sent), false when it
   * had to be killed or ended otherwise.
   */
  async stop(signal = "SIGTERM") {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return true;
    const exited = new Promise((resolve) => child.once("exit", (code, sig) => resolve([code, sig])));
    child.kill(signal);
    const timeoutMs = this.options.stopTimeoutMs ?? 20_000;
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.printer.say(`still running ${timeoutMs / 1000} s after ${signal}; killing it`);
      child.kill("SIGKILL");
    }, timeoutMs);
    const [code, sig] = await exited;
    clearTimeout(timer);
    const clean = !killed && (code === 0 || sig === signal);
    this.printer.say(clean ? "stopped" : `stopped (${killed ? "killed" : ending(code, sig)})`);
    return clean;
  }

  /** Last resort when the supervisor itself is going away abruptly. */
  killNow() {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
