import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsServer } from "../../internal/testing/nats-server.js";
import { REPO_ROOT } from "../../internal/testing/service-process.js";
import { adoptStoreBeforeAccounts, localNatsUsers, placeAccountsFile, storeBeforeAccounts, USERS_DIR_NAME } from "./local-nats-users.mjs";

const dir = mkdtempSync(join(tmpdir(), "rockets-local-users-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("localNatsUsers", () => {
  it("makes one password per user on first use, readable only by this user, and reuses them", () => {
    const first = localNatsUsers(dir);
    const usersDir = join(dir, USERS_DIR_NAME);
    expect(statSync(usersDir).mode & 0o777).toBe(0o700);
    for (const user of ["ingest", "api", "sequencer", "rockets-admin", "system", "route"]) {
      expect(statSync(join(usersDir, user)).mode & 0o777, user).toBe(0o600);
    }
    const passwords = Object.values(first.serverEnv).filter((v) => v !== "system");
    expect(new Set(passwords).size).toBe(6);
    for (const p of passwords) expect(p).toMatch(/^p[A-Za-z0-9_-]{32}$/);
    expect(localNatsUsers(dir).serverEnv).toEqual(first.serverEnv);
    expect(first.serviceEnv("api")).toEqual({ NATS_USER: "api", NATS_PASSWORD: first.serverEnv["NATS_API_PASSWORD"], NATS_INBOX_PREFIX: "_INBOX_api" });
    expect(first.routeUrl("127.0.0.1", 6223)).toBe(`nats-route://route:${first.serverEnv["NATS_ROUTE_PASSWORD"]}@127.0.0.1:6223`);
    expect(first.adminCommand(dir)).toBe(`NATS_USER=rockets-admin NATS_PASSWORD="$(cat '${USERS_DIR_NAME}/rockets-admin')"`);
  });

  it("gives the server every password the shipped accounts file reads", () => {
    const accounts = readFileSync(join(REPO_ROOT, "deploy", "nats", "accounts.conf"), "utf8");
    const read = new Set([...accounts.matchAll(/\$(NATS_[A-Z_]+)/g)].map((m) => m[1]!));
    const env = localNatsUsers(dir).serverEnv;
    for (const variable of read) expect(env[variable], variable).toBeDefined();
    const configDir = join(dir, "conf");
    mkdirSync(configDir);
    expect(placeAccountsFile(REPO_ROOT, configDir)).toBe("./accounts.conf");
    expect(readFileSync(join(configDir, "accounts.conf"), "utf8")).toBe(accounts);
  });

  it("refuses a password file that holds something else", () => {
    const other = mkdtempSync(join(tmpdir(), "rockets-local-users-"));
    try {
      mkdirSync(join(other, USERS_DIR_NAME));
      writeFileSync(join(other, USERS_DIR_NAME, "api"), "two words\n");
      expect(() => localNatsUsers(other)).toThrow(/must hold one password/);
      // nats-server would read this one as the start of a date, and refuse its whole configuration.
      writeFileSync(join(other, USERS_DIR_NAME, "api"), "12-Uab\n");
      expect(() => localNatsUsers(other)).toThrow(/beginning with a digit/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("moves a standalone store's streams from the default account to ROCKETS once", () => {
    const store = join(dir, "store");
    mkdirSync(join(store, "jetstream", "$G", "streams", "ROCKETS_EVENTS"), { recursive: true });
    expect(storeBeforeAccounts(store)).toBe(true);
    expect(adoptStoreBeforeAccounts(store)).toBe(true);
    expect(existsSync(join(store, "jetstream", "ROCKETS", "streams", "ROCKETS_EVENTS"))).toBe(true);
    expect(storeBeforeAccounts(store)).toBe(false);
    expect(adoptStoreBeforeAccounts(store)).toBe(false);
  });

  it("lets a store made before the accounts be read through them once moved (a real nats-server)", async () => {
    const store = mkdtempSync(join(tmpdir(), "rockets-store-before-"));
    try {
      const before = await NatsServer.start({ storeDir: store });
      const nc = await connect({ servers: before.url });
      await (await jetstreamManager(nc)).streams.add({ name: "ROCKETS_EVENTS", subjects: ["rockets.events.>"] });
      await jetstream(nc).publish("rockets.events.0.kept", "{}");
      await nc.close();
      await before.stop();
      expect(adoptStoreBeforeAccounts(store)).toBe(true);
      const users = localNatsUsers(store);
      const after = await NatsServer.start({ storeDir: store, include: [join(REPO_ROOT, "deploy", "nats", "accounts.conf")], env: users.serverEnv });
      try {
        const admin = await connect({ servers: after.url, user: "rockets-admin", pass: users.serverEnv["NATS_ADMIN_PASSWORD"] });
        expect((await (await jetstreamManager(admin)).streams.info("ROCKETS_EVENTS")).state.messages).toBe(1);
        await admin.close();
      } finally {
        await after.stop();
      }
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
