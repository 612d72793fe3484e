// Gets a fresh machine ready to run or test the project: npm dependencies and
// Debian's nats-server. Plain JavaScript with no dependencies, because it runs
// before `npm ci` has. It says what it does; when it cannot do something
// (another OS, no root or sudo) it says exactly what to run and exits non-zero.

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

function say(message) {
  process.stderr.write(`[setup] ${message}\n`);
}

function run(cmd, args, options = {}) {
  say(`running: ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: ROOT, ...options });
  return r.status === 0;
}

function has(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

function fail(message) {
  say(message);
  process.exit(1);
}

/** Installs npm dependencies when node_modules is missing or older than the lock file. */
export function ensureNodeModules() {
  const modules = join(ROOT, "node_modules", ".package-lock.json");
  const lock = join(ROOT, "package-lock.json");
  if (existsSync(modules) && statSync(modules).mtimeMs >= statSync(lock).mtimeMs) return;
  say("npm dependencies are missing or out of date; installing them");
  if (!run("npm", ["ci", "--no-audit", "--no-fund"])) fail("`npm ci` failed; fix the error above and run it again");
}

function aptInstall(packages, why) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const isDebian = existsSync("/etc/debian_version") && has("apt-get");
  const manual = `sudo apt-get update && sudo apt-get install -y ${packages.join(" ")}`;
  if (!isDebian) {
    fail(`${why} is missing and this is not a Debian-like system. Install it yourself (on macOS: brew install ${packages.join(" ")}) and run this again.`);
  }
  const sudo = isRoot ? [] : has("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0 ? ["sudo", "-n"] : undefined;
  if (!sudo) fail(`${why} is missing and installing it needs root. Run:\n  ${manual}\nthen run this again.`);
  say(`${why} is missing; installing Debian's ${packages.join(", ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const [cmd, ...pre] = sudo.length ? sudo : ["apt-get"];
  const apt = sudo.length ? ["apt-get"] : [];
  if (!run(cmd, [...pre, ...apt, "update", "-qq"], { env }) || !run(cmd, [...pre, ...apt, "install", "-y", "-qq", ...packages], { env })) {
    fail(`installing ${packages.join(" ")} failed. Run:\n  ${manual}`);
  }
}

/** Debian installs nats-server in /usr/sbin, which is not on an ordinary user's PATH. */
const DEBIAN_NATS_SERVER = "/usr/sbin/nats-server";

/** The nats-server to run: NATS_SERVER_BIN, else the one on PATH, else Debian's; undefined when none. */
export function natsServerBin() {
  if (process.env.NATS_SERVER_BIN && existsSync(process.env.NATS_SERVER_BIN)) return process.env.NATS_SERVER_BIN;
  if (has("nats-server")) return "nats-server";
  if (existsSync(DEBIAN_NATS_SERVER)) return DEBIAN_NATS_SERVER;
  return undefined;
}

/** Makes sure a nats-server binary is on PATH (or NATS_SERVER_BIN points at one); returns how to run it. */
export function ensureNatsServer() {
  const found = natsServerBin();
  if (found) return found;
  aptInstall(["nats-server"], "nats-server");
  const installed = natsServerBin();
  if (!installed) fail("nats-server is still not found after installing it (looked on PATH and in /usr/sbin)");
  return installed;
}

/** Prometheus's promtool and server, used by the deployment checks. */
export function ensurePrometheus() {
  if (has("promtool") && has("prometheus")) return;
  aptInstall(["prometheus"], "prometheus (promtool)");
}
