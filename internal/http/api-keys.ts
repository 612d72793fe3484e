// The API keys file and the check of a presented key against it; pure (no
// I/O: the caller reads the file), shared by every service.
//
// Guarantees:
// - The file holds one key a line, `<name> <scopes> <sha256 hex of the key>`,
//   scopes comma-separated from `write`, `read`, `metrics`; `#` starts a
//   comment, blank lines are skipped. Only digests are stored: the file lets
//   no one present a key.
// - Parsing reports every bad line at once (its number and what is wrong,
//   never the line's text, which may be a pasted key), so that a service with
//   a bad file refuses to start naming all of them.
// - A presented key is hashed with sha256 and its digest compared with every
//   entry's through crypto.timingSafeEqual, all of them, whatever matched:
//   the time taken tells nothing about which key or how much of it matched.
// - The credential is taken from `Authorization: Bearer <key>` or from Basic
//   auth's password (any user name), so that a client given a URL with
//   userinfo (`http://rockets:<key>@host:8088/messages`; Go sends it as Basic)
//   authenticates without code of its own.

import { hash, randomBytes, timingSafeEqual } from "node:crypto";

export const Scope = {
  /** POST messages to ingest. */
  write: "write",
  /** Read the query API: rockets, histories, event streams, the console's data. */
  read: "read",
  /** Scrape /metrics and read the sequencer's ops routes (/partitions). */
  metrics: "metrics",
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];
export const SCOPES: readonly Scope[] = Object.values(Scope);

export interface ApiKeyEntry {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** sha256 of the key, 32 bytes. */
  digest: Buffer;
}

/** Who presented a key: the entry's name and what it may do. */
export interface ApiPrincipal {
  name: string;
  scopes: ReadonlySet<Scope>;
}

const NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const DIGEST_PATTERN = /^[0-9a-fA-F]{64}$/;

export interface ParsedKeys {
  entries: ApiKeyEntry[];
  /** One line per bad line of the file: `line N: why`. Empty when the file is good. */
  problems: string[];
}

/** Parses a keys file's text; never throws: a bad file is `problems`, every one of them. */
export function parseApiKeys(text: string): ParsedKeys {
  const entries: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  const digests = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const at = `line ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 3) {
      problems.push(`${at}: expected 3 fields "<name> <scopes> <sha256 hex of the key>", got ${fields.length}`);
      return;
    }
    const [name, scopeList, hex] = fields as [string, string, string];
    const why: string[] = [];
    if (!NAME_PATTERN.test(name)) why.push("the name must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
    else if (names.has(name)) why.push(`the name "${name}" is used by an earlier line`);
    const scopes = scopeList.split(",");
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length > 0 || scopes.length === 0) why.push(`scopes must be a comma-separated list of ${SCOPES.join(", ")}`);
    if (!DIGEST_PATTERN.test(hex)) why.push("the third field must be the key's sha256 as 64 hex digits (not the key itself)");
    else if (digests.has(hex.toLowerCase())) why.push("the same key is listed by an earlier line");
    if (why.length > 0) {
      problems.push(`${at}: ${why.join("; ")}`);
      return;
    }
    names.add(name);
    digests.add(hex.toLowerCase());
    entries.push({ name, scopes: new Set(scopes as Scope[]), digest: Buffer.from(hex, "hex") });
  });
  if (problems.length === 0 && entries.length === 0) problems.push("the file lists no key: every request would be refused");
  return { entries, problems };
}

export function keyDigest(key: string): Buffer {
  // One-shot hash: a third of createHash's cost, paid on every authenticated request.
  return hash("sha256", key, "buffer");
}

export class ApiKeys {
  constructor(private readonly entries: readonly ApiKeyEntry[]) {}

  get size(): number {
    return this.entries.length;
  }

  /**
   * The entry whose key this is, or undefined. Every entry is compared, in
   * constant time each, with no early exit, so that timing reveals nothing.
   */
  identify(key: string): ApiPrincipal | undefined {
    const digest = keyDigest(key);
    let found: ApiKeyEntry | undefined;
    for (const entry of this.entries) {
      const same = timingSafeEqual(digest, entry.digest);
      if (same && found === undefined) found = entry;
    }
    return found === undefined ? undefined : { name: found.name, scopes: found.scopes };
  }
}

/**
 * The key a request presents in its Authorization header: a Bearer token,
 * or the password of Basic auth (the user name is ignored). Undefined when
 * there is none or the header is not one of these.
 */
export function presentedKey(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme === "bearer") return m[2];
  if (scheme !== "basic") return undefined;
  const decoded = Buffer.from(m[2]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  const password = decoded.slice(colon + 1);
  return password === "" ? undefined : password;
}

/** A new random key: 32 bytes, base64url (43 characters, safe in a URL's userinfo). */
export function generateApiKey(): string {
  return randomBytes(32).toString("base64url");
}

/** The keys file line for a key: what `npm run keys` and `npm start` write. */
export function keysFileLine(name: string, scopes: readonly Scope[], key: string): string {
  return `${name} ${scopes.join(",")} ${keyDigest(key).toString("hex")}`;
}
