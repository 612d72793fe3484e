// Gets a fresh machine ready to run or test the project: npm dependencies and
// a current nats-server (Debian's own package, from its testing suite when the
// release installed is older than the project needs). Plain JavaScript with no dependencies, because it runs
// before `npm ci` has. It says what it does; when it cannot do something
// (another OS, no root or sudo) it says exactly what to run and exits non-zero.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
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

/** [] when root, ["sudo", "-n"] with passwordless sudo, else undefined. */
function rootOrSudo() {
  if (typeof process.getuid === "function" && process.getuid() === 0) return [];
  return has("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0 ? ["sudo", "-n"] : undefined;
}

function aptInstall(packages, why) {
  const isDebian = existsSync("/etc/debian_version") && has("apt-get");
  const manual = `sudo apt-get update && sudo apt-get install -y ${packages.join(" ")}`;
  if (!isDebian) {
    fail(`${why} is missing and this is not a Debian-like system. Install it yourself (on macOS: brew install ${packages.join(" ")}) and run this again.`);
  }
  const sudo = rootOrSudo();
  if (!sudo) fail(`${why} is missing and installing it needs root. Run:\n  ${manual}\nthen run this again.`);
  say(`${why} is missing; installing Debian's ${packages.join(", ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const [cmd, ...pre] = sudo.length ? sudo : ["apt-get"];
  const apt = sudo.length ? ["apt-get"] : [];
  if (!run(cmd, [...pre, ...apt, "update", "-qq"], { env }) || !run(cmd, [...pre, ...apt, "install", "-y", "-qq", ...packages], { env })) {
    fail(`installing ${packages.join(" ")} failed. Run:\n  ${manual}`);
  }
}

/**
 * The NATS server line the project is built and tested on. 2.11 is the
 * oldest with what the design relies on (per-message and per-key TTLs,
 * consumer priority groups, the cluster fixes listed in docs/nats.md); the
 * release below is the one tests, `npm start`, compose and Kubernetes run.
 */
export const NATS_MIN_VERSION = "2.11.0";
export const NATS_PINNED_VERSION = "2.15.1";
/** Debian's suite that ships it (testing at the time of writing); NATS_DEB_SUITE overrides. */
const NATS_DEB_SUITE = process.env.NATS_DEB_SUITE || "forky";
/** Where the project installs the server when the one found is older: on every user's PATH (NATS_INSTALL_PATH overrides). */
const NATS_INSTALL_PATH = process.env.NATS_INSTALL_PATH || "/usr/local/bin/nats-server";
/** Debian installs nats-server in /usr/sbin, which is not on an ordinary user's PATH. */
const DEBIAN_NATS_SERVER = "/usr/sbin/nats-server";

/** "2.15.1" from `nats-server --version` ("nats-server: v2.15.1"); undefined when it does not run. */
export function natsServerVersion(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return undefined;
  return /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`)?.[1];
}

/** Compares dotted versions numerically: negative, zero or positive. */
export function compareVersions(a, b) {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function candidates() {
  const found = [];
  if (process.env.NATS_SERVER_BIN) found.push(process.env.NATS_SERVER_BIN);
  if (has("nats-server")) found.push("nats-server");
  if (existsSync(NATS_INSTALL_PATH)) found.push(NATS_INSTALL_PATH);
  if (existsSync(DEBIAN_NATS_SERVER)) found.push(DEBIAN_NATS_SERVER);
  return found;
}

/** The first nats-server found (NATS_SERVER_BIN, PATH, /usr/local/bin, Debian's /usr/sbin) that is recent enough, with its version. */
export function natsServerBin() {
  for (const bin of candidates()) {
    const version = natsServerVersion(bin);
    if (version && compareVersions(version, NATS_MIN_VERSION) >= 0) return { bin, version };
  }
  return undefined;
}

/** The mirror the system's own Debian sources use, so the testing suite comes from the same place. */
function debianMirror() {
  for (const file of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822 && !deb822[1].includes("security")) return deb822[1];
    const legacy = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(text);
    if (legacy && !legacy[1].includes("security")) return legacy[1];
  }
  return "http://deb.debian.org/debian";
}

/**
 * Fetches nats-server from Debian's testing suite without touching the
 * system's package state: a source list and package lists of our own, `apt-get
 * download` (the exact pinned release when the suite still has it, else the
 * suite's current one), `dpkg-deb -x`, and the binary copied to
 * /usr/local/bin. The package depends only on libc6 >= 2.34, which Debian 12 has.
 */
function installNatsFromDebianTesting(sudo) {
  const work = mkdtempSync(join(tmpdir(), "rockets-nats-deb-"));
  const lists = join(work, "lists");
  mkdirSync(join(lists, "partial"), { recursive: true });
  const sources = join(work, "testing.sources");
  writeFileSync(
    sources,
    `Types: deb\nURIs: ${debianMirror()}\nSuites: ${NATS_DEB_SUITE}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  const apt = ["-o", `Dir::Etc::sourcelist=${sources}`, "-o", "Dir::Etc::sourceparts=-", "-o", `Dir::State::Lists=${lists}`, "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  say(`nats-server >= ${NATS_MIN_VERSION} is not installed; fetching ${NATS_PINNED_VERSION} from Debian's ${NATS_DEB_SUITE} suite (the system's packages stay untouched)`);
  try {
    if (!run("apt-get", [...apt, "update", "-qq"], { env, cwd: work })) return false;
    const pinned = run("apt-get", [...apt, "download", `nats-server=${NATS_PINNED_VERSION}-*`], { env, cwd: work });
    if (!pinned) {
      say(`${NATS_PINNED_VERSION} is no longer in ${NATS_DEB_SUITE}; taking the suite's current nats-server`);
      if (!run("apt-get", [...apt, "download", "nats-server"], { env, cwd: work })) return false;
    }
    const deb = readdirSync(work).find((f) => f.startsWith("nats-server_") && f.endsWith(".deb"));
    if (!deb || !run("dpkg-deb", ["-x", join(work, deb), join(work, "root")])) return false;
    const bin = join(work, "root", "usr", "sbin", "nats-server");
    const version = natsServerVersion(bin);
    if (!version || compareVersions(version, NATS_MIN_VERSION) < 0) {
      say(`the downloaded nats-server reports ${version ?? "no version"}; need >= ${NATS_MIN_VERSION}`);
      return false;
    }
    const [cmd, ...pre] = sudo.length ? sudo : ["install"];
    const args = sudo.length ? ["install", "-m", "0755", bin, NATS_INSTALL_PATH] : ["-m", "0755", bin, NATS_INSTALL_PATH];
    return run(cmd, [...pre, ...args]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Makes sure a nats-server >= NATS_MIN_VERSION runs here; returns its path.
 * An older one (Debian 12 ships 2.9.10) is left in place and shadowed by the
 * one installed in /usr/local/bin, which comes first on PATH.
 */
export function ensureNatsServer() {
  const found = natsServerBin();
  if (found) return found.bin;
  const old = candidates().map((bin) => `${bin} ${natsServerVersion(bin) ?? "(does not run)"}`);
  if (old.length) say(`found ${old.join(", ")}: too old, the project needs nats-server >= ${NATS_MIN_VERSION}`);
  const manual = `see README.md, "NATS server": install nats-server ${NATS_PINNED_VERSION} (Debian ${NATS_DEB_SUITE}'s package, or the release from the NATS project) as ${NATS_INSTALL_PATH}, or point NATS_SERVER_BIN at it`;
  if (!existsSync("/etc/debian_version") || !has("apt-get") || !has("dpkg-deb")) {
    fail(`nats-server >= ${NATS_MIN_VERSION} is missing and this is not a Debian-like system; ${manual}, then run this again.`);
  }
  const sudo = rootOrSudo();
  if (!sudo) fail(`nats-server >= ${NATS_MIN_VERSION} is missing and installing it needs root or passwordless sudo; ${manual}.`);
  if (!installNatsFromDebianTesting(sudo)) fail(`installing nats-server failed (see above); ${manual}.`);
  const installed = natsServerBin();
  if (!installed) fail(`nats-server is still not found after installing it in ${NATS_INSTALL_PATH}`);
  say(`using nats-server ${installed.version} (${installed.bin})`);
  return installed.bin;
}

/** Prometheus's promtool and server, used by the deployment checks. */
export function ensurePrometheus() {
  if (has("promtool") && has("prometheus")) return;
  aptInstall(["prometheus"], "prometheus (promtool)");
}

/** Debian's chromium, which the console's browser tests drive through playwright-core; returns its path. */
export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

export function ensureChromium() {
  if (existsSync(CHROMIUM_BIN)) return CHROMIUM_BIN;
  aptInstall(["chromium"], "chromium (for the console's browser tests)");
  if (!existsSync(CHROMIUM_BIN)) fail(`chromium is still not found at ${CHROMIUM_BIN} after installing it`);
  return CHROMIUM_BIN;
}
