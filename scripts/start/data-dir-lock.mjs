// One `npm start` per data directory. Two nats-servers on one JetStream store
// corrupt it (seen: a lease bucket whose stream said messages:0,
// first_seq:477, last_seq:275, and a sequencer that never got ready again),
// so a start takes DATA_DIR/.rockets.lock before it starts nats-server and
// keeps it until everything it started has stopped.
//
// Guarantees:
// - The lock is created with O_EXCL: of two starts racing for a free
//   directory, exactly one gets it.
// - A lock whose holder is alive (the start's pid, or the pid of the
//   nats-server it started, still running that program on this host) is
//   refused with DataDirInUseError, whose message names the pid and how to
//   proceed. A nats-server left behind by a start that was killed outright
//   holds the directory as much as the start did.
// - A lock whose holder is gone (the pid is not running, or runs another
//   program now, or is this very process: a container restarted with the
//   same pids) is taken over. The takeover renames the stale lock away and
//   checks it renamed the one it judged stale before creating its own, so
//   two starts taking over at once cannot both win.
// - A lock written on another host cannot be checked from here: refused,
//   with the file to delete once it is known to be stale.
// - On Linux, a nats-server already running on the directory without any
//   lock (started by hand, or by the test harness) is found through /proc and
//   refused too, whether its store is given by -sd or in its -c file.

import { closeSync, linkSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";

export const LOCK_FILE = ".rockets.lock";

export class DataDirInUseError extends Error {
  name = "DataDirInUseError";
  /** @param {string} message @param {{ pid: number, natsPid?: number, host: string, startedAt: string } | undefined} holder */
  constructor(message, holder) {
    super(message);
    this.holder = holder;
  }
}

/** The command line of a process on this host, or undefined where /proc cannot tell (other OS, gone). */
function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True when `pid` is running here and (where /proc can tell) still runs a program whose command line mentions `program`. */
export function isRunning(pid, program) {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== "EPERM") return false;
  }
  const cmd = commandLine(pid);
  return cmd === undefined || cmd.some((arg) => arg.includes(program));
}

/** The store_dir a nats-server configuration file sets, if it can be read. */
function configuredStoreDir(file) {
  try {
    const m = /^\s*store_dir\s*[:=]?\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))/m.exec(readFileSync(file, "utf8"));
    if (!m) return undefined;
    return m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : (m[2] ?? m[3]);
  } catch {
    return undefined;
  }
}

/** The store directories a nats-server's command line gives it, by -sd or through its configuration file. */
function storeDirsOf(pid, cmd) {
  let cwd;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    cwd = "/";
  }
  const dirs = [];
  for (let i = 0; i < cmd.length; i++) {
    const m = /^--?(sd|store_dir|c|config)(?:=(.*))?$/.exec(cmd[i]);
    if (!m) continue;
    const value = m[2] ?? cmd[i + 1];
    if (value === undefined) continue;
    if (m[1] === "sd" || m[1] === "store_dir") {
      dirs.push(resolve(cwd, value));
    } else {
      const store = configuredStoreDir(resolve(cwd, value));
      if (store !== undefined) dirs.push(resolve(cwd, store));
    }
  }
  return dirs;
}

/** Pids of nats-server processes on this host whose JetStream store directory is `dataDir`; empty where /proc is not there. */
export function natsServersOn(dataDir) {
  const wanted = resolve(dataDir);
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const pids = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isSafeInteger(pid) || pid === process.pid) continue;
    const cmd = commandLine(pid);
    if (!cmd || !/(^|\/)nats-server$/.test(cmd[0] ?? "")) continue;
    if (storeDirsOf(pid, cmd).includes(wanted)) pids.push(pid);
  }
  return pids;
}

function describe(holder) {
  return `pid ${holder.pid}${holder.startedAt ? `, started ${holder.startedAt}` : ""}`;
}

/** Why the holder still holds the directory, or undefined when the lock is stale. */
function liveHolder(holder, dir, file) {
  if (holder.host !== undefined && holder.host !== hostname()) {
    return (
      `${dir} is locked by ${describe(holder)} on host ${holder.host}, which cannot be checked from here. ` +
      `If nothing runs there on this directory any more, delete ${file} and start again.`
    );
  }
  if (isRunning(holder.pid, "start.mjs")) {
    return (
      `${dir} is in use by pid ${holder.pid} (npm start${holder.startedAt ? ` since ${holder.startedAt}` : ""}). ` +
      `Use that one, or stop it first (Ctrl-C in its terminal, or kill ${holder.pid}); ` +
      `to run a second system, give it another DATA_DIR and other ports.`
    );
  }
  if (holder.natsPid !== undefined && isRunning(holder.natsPid, "nats-server")) {
    return (
      `${dir} is still used by nats-server pid ${holder.natsPid}, left running by an npm start (pid ${holder.pid}) that is gone. ` +
      `Stop it first (kill ${holder.natsPid}), then start again.`
    );
  }
  return undefined;
}

function readHolder(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err.code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const holder = JSON.parse(text);
    return { text, holder: holder && typeof holder === "object" ? holder : {} };
  } catch {
    // A lock cut short by a crash while it was written: nobody holds it.
    return { text, holder: {} };
  }
}

function createExclusive(file, content) {
  const fd = openSync(file, "wx", 0o644);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/**
 * Takes the lock on `dataDir` for this process. Returns the lock (update()
 * records the nats-server's pid, release() gives it up) and, when it took
 * over a stale one, whose it was. Throws DataDirInUseError when held.
 */
export function lockDataDir(dataDir, { attempts = 5 } = {}) {
  const dir = resolve(dataDir);
  const file = join(dir, LOCK_FILE);
  const mine = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), natsPid: undefined };
  const content = () => `${JSON.stringify(mine)}\n`;
  let tookOver;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      createExclusive(file, content());
      const others = natsServersOn(dir);
      if (others.length > 0) {
        unlinkSync(file);
        throw new DataDirInUseError(
          `${dir} is in use by nats-server pid ${others.join(", ")}, started without npm start. Stop it first (kill ${others[0]}), or use another DATA_DIR.`,
          undefined,
        );
      }
      return { file, tookOver, ...lockHandle(file, mine, content) };
    } catch (err) {
      if (err.code !== "EEXIST") throw err;
    }
    const seen = readHolder(file);
    if (seen === undefined) continue;
    const why = liveHolder(seen.holder, dir, file);
    if (why) throw new DataDirInUseError(why, seen.holder);
    // Stale: move it aside, and make sure it is the one judged stale before replacing it.
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if (err.code === "ENOENT") continue;
      throw err;
    }
    const moved = readFileSync(aside, "utf8");
    if (moved !== seen.text) {
      // Another start replaced it meanwhile: put theirs back and look again.
      try {
        linkSync(aside, file);
      } catch {
        // A third start took the free directory: its lock stands.
      }
      unlinkSync(aside);
      continue;
    }
    unlinkSync(aside);
    tookOver = seen.holder;
  }
  throw new DataDirInUseError(`${dir}: could not take ${file} after ${attempts} attempts; other starts keep changing it`, undefined);
}

function lockHandle(file, mine, content) {
  let held = true;
  const ours = () => {
    try {
      return JSON.parse(readFileSync(file, "utf8")).pid === mine.pid;
    } catch {
      return false;
    }
  };
  return {
    /** Records more of what holds the directory (the nats-server's pid). */
    update(fields) {
      if (!held) return;
      Object.assign(mine, fields);
      writeFileSync(`${file}.${mine.pid}`, content());
      renameSync(`${file}.${mine.pid}`, file);
    },
    /** Gives the directory up; only ever removes a lock this process holds. */
    release() {
      if (!held) return;
      held = false;
      if (ours()) unlinkSync(file);
    },
  };
}
