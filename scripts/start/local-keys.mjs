// The API key of a local run (`npm start`, `npm run cluster`), so that the
// system a person starts on their machine is as closed as a deployed one:
//
// - AUTH=on (the default) without AUTH_KEYS_FILE: on the first start a random
//   key (32 bytes, base64url) is made with the scopes read, write and metrics
//   (the local operator is also who reads /metrics and /partitions); the
//   keys file the services read (`api-keys`: the key's sha256 only) and the
//   key itself (`api-key`) are written into the data directory, both mode
//   0600 (only this user can read them), and kept: every later start on the
//   same directory uses the same key. Delete both files to get a new key.
// - AUTH_KEYS_FILE set: that file is used as it is; the key to print comes
//   from ROCKETS_API_KEY when set (it cannot be recovered from the file).
// - AUTH=off: nothing is written, and the caller warns loudly.
//
// The line format is the services' (internal/http/api-keys.ts parses it;
// local-keys.test.ts checks that it reads what is written here).

import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";

export const LOCAL_KEY_NAME = "local";
export const LOCAL_KEY_SCOPES = ["read", "write", "metrics"];
export const KEYS_FILE_NAME = "api-keys";
export const KEY_FILE_NAME = "api-key";

/** A new random key: 32 bytes, base64url (safe in a URL's userinfo). */
export function generateKey() {
  return randomBytes(32).toString("base64url");
}

/** The keys file line for `key`. */
export function keysLine(name, scopes, key) {
  return `${name} ${scopes.join(",")} ${createHash("sha256").update(key, "utf8").digest("hex")}`;
}

/**
 * The keys of a local run in `dataDir`, created on first use:
 * `{ auth: "off" }`, or `{ auth: "on", keysFile, key (undefined when unknown), created }`.
 */
export function localKeys(dataDir, env) {
  if ((env.AUTH ?? "").trim().toLowerCase() === "off") return { auth: "off" };
  if (env.AUTH_KEYS_FILE) return { auth: "on", keysFile: env.AUTH_KEYS_FILE, key: env.ROCKETS_API_KEY || undefined, created: false };
  const keysFile = join(dataDir, KEYS_FILE_NAME);
  const keyFile = join(dataDir, KEY_FILE_NAME);
  if (existsSync(keysFile)) {
    // Tightened again in case they were copied or restored with a wider mode.
    chmodSync(keysFile, 0o600);
    let key;
    if (existsSync(keyFile)) {
      chmodSync(keyFile, 0o600);
      key = readFileSync(keyFile, "utf8").trim() || undefined;
    }
    return { auth: "on", keysFile, key, created: false };
  }
  const key = generateKey();
  // "wx": never over a file another start is writing.
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: "wx" });
  writeFileSync(
    keysFile,
    `# API keys of this data directory (npm start); lines of <name> <scopes> <sha256 hex of the key>.\n` +
      `# The key itself is in ${KEY_FILE_NAME}. See docs/security.md, "Keys".\n` +
      `${keysLine(LOCAL_KEY_NAME, LOCAL_KEY_SCOPES, key)}\n`,
    { mode: 0o600, flag: "wx" },
  );
  return { auth: "on", keysFile, key, created: true };
}

/** The lines a local run prints when AUTH=off, on every start. */
export const AUTH_OFF_WARNING = [
  "WARNING: AUTH=off - authentication is OFF.",
  "WARNING: anyone who can reach these ports can post messages (explode or rewrite any rocket),",
  "WARNING: read every rocket and stream, and scrape /metrics. Use it only on a machine nobody else reaches.",
];

/** The environment the services get for these keys. */
export function serviceAuthEnv(keys) {
  return keys.auth === "off" ? { AUTH: "off" } : { AUTH: "on", AUTH_KEYS_FILE: keys.keysFile };
}

/** `http://rockets:<key>@host:port/path`, the way the operators' program takes a key. */
export function urlWithKey(url, key) {
  if (!key) return url;
  const u = new URL(url);
  u.username = "rockets";
  u.password = key;
  return u.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
}
