import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, NATS_SERVER_BIN, NatsServer } from "../../internal/testing/nats-server.js";
import { DataDirInUseError, LOCK_FILE, lockDataDir, natsServersOn } from "./data-dir-lock.mjs";

const dirs: string[] = [];
const children: ChildProcess[] = [];
let nats: NatsServer | undefined;
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  await nats?.dispose();
  nats = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "rockets-lock-"));
  dirs.push(dir);
  return dir;
}

/** A live process whose command line mentions `program`, as a start or a nats-server would. */
async function liveProcess(program: string): Promise<number> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", program], { stdio: "ignore" });
  children.push(child);
  // Until the exec, /proc shows the parent's command line.
  while (!readFileSync(`/proc/${child.pid}/cmdline`, "utf8").includes(program)) await new Promise((r) => setTimeout(r, 10));
  return child.pid!;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
  await new Promise((r) => child.once("exit", r));
  return child.pid!;
}

function writeLock(dir: string, holder: Record<string, unknown>): void {
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ host: hostname(), startedAt: "2026-01-01T00:00:00.000Z", ...holder }));
}

function refusal(dir: string): DataDirInUseError {
  try {
    lockDataDir(dir);
  } catch (err) {
    if (err instanceof DataDirInUseError) return err;
    throw err;
  }
  throw new Error("the lock was granted");
}

describe("lockDataDir", () => {
  it("takes a free directory, records this process, and removes the lock on release", () => {
    const dir = tempDir();
    const lock = lockDataDir(dir);
    expect(lock.tookOver).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    lock.update({ natsPid: 4242 });
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid: process.pid, natsPid: 4242 });
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it("refuses a directory held by a running start, naming its pid and how to proceed", async () => {
    const dir = tempDir();
    const pid = await liveProcess("scripts/start.mjs");
    writeLock(dir, { pid });
    const err = refusal(dir);
    expect(err.message).toContain(`in use by pid ${pid}`);
    expect(err.message).toMatch(/stop it first .*kill/);
    expect(err.message).toMatch(/another DATA_DIR/);
    // Refusing leaves the holder's lock alone.
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid });
  });

  it("refuses while the nats-server of a start that is gone still runs on the directory", async () => {
    const dir = tempDir();
    const natsPid = await liveProcess("nats-server");
    writeLock(dir, { pid: await deadPid(), natsPid });
    expect(refusal(dir).message).toContain(`nats-server pid ${natsPid}`);
  });

  it("takes over a lock whose holder is gone, or whose pid now runs another program", async () => {
    for (const pid of [await deadPid(), await liveProcess("something-else")]) {
      const dir = tempDir();
      writeLock(dir, { pid, natsPid: await deadPid() });
      const lock = lockDataDir(dir);
      expect(lock.tookOver).toMatchObject({ pid });
      expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"))).toMatchObject({ pid: process.pid });
      lock.release();
    }
  });

  it("takes over a lock naming this very process (a container restarted with the same pids) or cut short", () => {
    const dir = tempDir();
    writeLock(dir, { pid: process.pid });
    expect(lockDataDir(dir).tookOver).toMatchObject({ pid: process.pid });
    const cut = tempDir();
    writeFileSync(join(cut, LOCK_FILE), '{"pid":12');
    expect(lockDataDir(cut).tookOver).toEqual({});
  });

  it("refuses a lock from another host, naming the file to delete", () => {
    const dir = tempDir();
    writeLock(dir, { pid: 1, host: "elsewhere" });
    const err = refusal(dir);
    expect(err.message).toContain("on host elsewhere");
    expect(err.message).toContain(join(dir, LOCK_FILE));
  });

  it("release never removes a lock another process holds", () => {
    const dir = tempDir();
    const lock = lockDataDir(dir);
    writeLock(dir, { pid: 7 });
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
  });

  it("refuses a directory a nats-server started by hand already uses, from a configuration file or -sd", async () => {
    const dir = tempDir();
    nats = await NatsServer.start({ storeDir: dir });
    expect(natsServersOn(dir)).toEqual([nats.pid]);
    expect(natsServersOn(tempDir())).toEqual([]);
    expect(refusal(dir).message).toContain(`nats-server pid ${nats.pid}`);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);

    // The way npm start runs it: the store on the command line, relative to the server's working directory.
    const other = tempDir();
    const byFlag = spawn(NATS_SERVER_BIN, ["-js", "-a", "127.0.0.1", "-p", String(await freePort()), "-sd", "."], { cwd: other, stdio: "ignore" });
    children.push(byFlag);
    while (!readFileSync(`/proc/${byFlag.pid}/cmdline`, "utf8").includes("-sd")) await new Promise((r) => setTimeout(r, 10));
    expect(natsServersOn(other)).toEqual([byFlag.pid]);
  });
});
