import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ApiKeys, parseApiKeys } from "../../internal/http/api-keys.js";
import { localKeys, serviceAuthEnv, urlWithKey } from "./local-keys.mjs";

const dir = mkdtempSync(join(tmpdir(), "rockets-local-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("localKeys", () => {
  it("makes a key on first use, readable only by this user, that the services' parser accepts with read, write and metrics", () => {
    const first = localKeys(dir, {});
    expect(first).toMatchObject({ auth: "on", keysFile: join(dir, "api-keys"), created: true });
    if (first.auth !== "on") throw new Error("unreachable");
    expect(first.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const file of ["api-keys", "api-key"]) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    const text = readFileSync(first.keysFile, "utf8");
    expect(text).not.toContain(first.key);
    const parsed = parseApiKeys(text);
    expect(parsed.problems).toEqual([]);
    expect(new ApiKeys(parsed.entries).identify(first.key!)).toEqual({ name: "local", scopes: new Set(["read", "write", "metrics"]) });
    expect(serviceAuthEnv(first)).toEqual({ AUTH: "on", AUTH_KEYS_FILE: first.keysFile });

    // Kept: the next start uses the same key.
    expect(localKeys(dir, {})).toEqual({ ...first, created: false });
  });

  it("uses a keys file given by AUTH_KEYS_FILE as it is, and writes nothing with AUTH=off", () => {
    const other = mkdtempSync(join(tmpdir(), "rockets-local-keys-"));
    try {
      expect(localKeys(other, { AUTH_KEYS_FILE: "/etc/keys", ROCKETS_API_KEY: "k" })).toEqual({ auth: "on", keysFile: "/etc/keys", key: "k", created: false });
      expect(localKeys(other, { AUTH: "off" })).toEqual({ auth: "off" });
      expect(serviceAuthEnv({ auth: "off" })).toEqual({ AUTH: "off" });
      expect(() => statSync(join(other, "api-keys"))).toThrow(/ENOENT/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("puts a key into a URL's userinfo the way the operators' program takes it", () => {
    expect(urlWithKey("http://127.0.0.1:8088/messages", "a-b_c")).toBe("http://rockets:a-b_c@127.0.0.1:8088/messages");
    expect(urlWithKey("http://127.0.0.1:8080", "k")).toBe("http://rockets:k@127.0.0.1:8080");
    expect(urlWithKey("http://127.0.0.1:8080", undefined)).toBe("http://127.0.0.1:8080");
  });
});
