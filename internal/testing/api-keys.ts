// Keys for tests that run the services with AUTH=on, the default: one key
// per role, random for each test process, and a keys file holding their
// digests, written once to a temp directory that only this user can read
// and removed when the process exits.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateApiKey, keysFileLine, Scope } from "../http/api-keys.js";

export const TEST_KEYS = {
  /** write only: what a rocket (the operators' program) holds. */
  writer: generateApiKey(),
  /** read only: what the console holds. */
  reader: generateApiKey(),
  /** metrics only: what Prometheus holds. */
  scraper: generateApiKey(),
  /** everything, for harnesses that post, read and scrape. */
  operator: generateApiKey(),
} as const;

export function testKeysText(): string {
  return [
    "# test keys, one per role",
    keysFileLine("writer", [Scope.write], TEST_KEYS.writer),
    keysFileLine("reader", [Scope.read], TEST_KEYS.reader),
    keysFileLine("scraper", [Scope.metrics], TEST_KEYS.scraper),
    keysFileLine("operator", [Scope.read, Scope.write, Scope.metrics], TEST_KEYS.operator),
    "",
  ].join("\n");
}

let file: string | undefined;

/** The keys file of TEST_KEYS (mode 0600), written on first use. */
export function testKeysFile(): string {
  if (file === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "rockets-keys-"));
    const path = join(dir, "keys");
    writeFileSync(path, testKeysText(), { mode: 0o600 });
    // Read by services only while they run, and they never outlive the process that started them.
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    file = path;
  }
  return file;
}

/** The environment that gives a service the test keys. */
export const testAuthEnv = (): Record<string, string> => ({ AUTH: "on", AUTH_KEYS_FILE: testKeysFile() });

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

/**
 * The header Go's net/http sends for a URL with userinfo
 * (`http://user:key@host/...`): Basic with the percent-decoded user and
 * password. fetch refuses URLs with credentials, so tests build it this way.
 */
export function basicFromUrl(url: string): Record<string, string> {
  const u = new URL(url);
  const pair = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  return { authorization: `Basic ${Buffer.from(pair).toString("base64")}` };
}
