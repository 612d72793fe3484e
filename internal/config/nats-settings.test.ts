import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connectionOptions } from "../nats/connection.js";
import { readNats } from "./common.js";
import { EnvReader, type ConfigError } from "./env-reader.js";

const dir = mkdtempSync(join(tmpdir(), "rockets-nats-settings-"));
const ca = join(dir, "ca.crt");
writeFileSync(ca, "not checked here: nats.js reads it when connecting");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(env: Record<string, string>): string[] {
  const r = new EnvReader(env);
  readNats(r, "test");
  try {
    r.done();
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
}

describe("readNats", () => {
  it("takes a user, its password, an inbox prefix and a CA to verify the servers, and hands them to the client", async () => {
    const r = new EnvReader({ NATS_USER: "ingest", NATS_PASSWORD: "s3cret", NATS_INBOX_PREFIX: "_INBOX_ingest", NATS_TLS_CA: ca });
    const settings = readNats(r, "ingest");
    r.done();
    const options = await connectionOptions(settings);
    expect(options).toMatchObject({ user: "ingest", pass: "s3cret", inboxPrefix: "_INBOX_ingest", tls: { caFile: ca } });
  });

  it("lists every problem at once, and never echoes a password", () => {
    const found = problems({
      NATS_USER: "ingest",
      NATS_PASSWORD: "do-not-print-me",
      NATS_TOKEN: "t",
      NATS_INBOX_PREFIX: "_INBOX.>",
      NATS_TLS_CA: join(dir, "missing-ca.crt"),
      NATS_TLS_CERT: ca,
      NATS_CREDS_FILE: join(dir, "missing.creds"),
    });
    expect(found.join("\n")).toMatch(/NATS_INBOX_PREFIX must be subject tokens/);
    expect(found.join("\n")).toMatch(/NATS_TLS_CA names a file that cannot be read: .*missing-ca\.crt \(ENOENT\)/);
    expect(found.join("\n")).toMatch(/NATS_CREDS_FILE names a file that cannot be read/);
    expect(found.join("\n")).toMatch(/NATS_TLS_CERT and NATS_TLS_KEY go together/);
    expect(found.join("\n")).toMatch(/choose one NATS authentication/);
    expect(found.join("\n")).not.toContain("do-not-print-me");
  });

  it("accepts the older NATS_CREDS for the creds file, and refuses it naming another file than NATS_CREDS_FILE", () => {
    const creds = join(dir, "user.creds");
    writeFileSync(creds, "");
    const r = new EnvReader({ NATS_CREDS: creds });
    expect(readNats(r, "test").credsFile).toBe(creds);
    r.done();
    expect(problems({ NATS_CREDS: creds, NATS_CREDS_FILE: ca })).toEqual(["NATS_CREDS_FILE and NATS_CREDS (its older name) name different files: set one"]);
  });

  it("leaves the inbox prefix nats.js's own unless set", () => {
    expect(readNats(new EnvReader({}), "test").inboxPrefix).toBe("_INBOX");
  });
});
