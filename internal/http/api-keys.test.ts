import { createHash } from "node:crypto";
import * as crypto from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiKeys, generateApiKey, keysFileLine, parseApiKeys, presentedKey, Scope } from "./api-keys.js";

const sha = (key: string) => createHash("sha256").update(key).digest("hex");

vi.mock("node:crypto", async (importOriginal) => {
  const real = await importOriginal<typeof crypto>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

describe("parseApiKeys", () => {
  it("reads name, scopes and digest, skipping comments and blank lines", () => {
    const text = ["# keys", "", "ops read,write,metrics " + sha("k1") + "  # the operators", "   ", "rocket write " + sha("k2").toUpperCase()].join("\n");
    const { entries, problems } = parseApiKeys(text);
    expect(problems).toEqual([]);
    expect(entries.map((e) => [e.name, [...e.scopes]])).toEqual([
      ["ops", ["read", "write", "metrics"]],
      ["rocket", ["write"]],
    ]);
    expect(entries[1]!.digest.toString("hex")).toBe(sha("k2"));
  });

  it("lists every bad line with its number and never the line's text", () => {
    const secret = "this-is-a-pasted-plain-key";
    const text = [
      `ops read ${sha("a")}`,
      `two-fields ${sha("b")}`,
      `ops read ${sha("c")}`,
      `bad/name read ${sha("d")}`,
      `x admin,read ${sha("e")}`,
      `plain write ${secret}`,
      `again read ${sha("a")}`,
      `y , ${sha("f")}`,
    ].join("\n");
    const { problems } = parseApiKeys(text);
    expect(problems).toEqual([
      expect.stringMatching(/^line 2: expected 3 fields/),
      expect.stringMatching(/^line 3: the name "ops" is used by an earlier line/),
      expect.stringMatching(/^line 4: the name must be/),
      expect.stringMatching(/^line 5: scopes must be a comma-separated list of write, read, metrics/),
      expect.stringMatching(/^line 6: the third field must be the key's sha256/),
      expect.stringMatching(/^line 7: the same key is listed by an earlier line/),
      expect.stringMatching(/^line 8: scopes must be/),
    ]);
    expect(problems.join("\n")).not.toContain(secret);
  });

  it("refuses a file with no key at all", () => {
    expect(parseApiKeys("# nothing yet\n\n").problems).toEqual([expect.stringMatching(/lists no key/)]);
  });

  it("reads back what keysFileLine writes", () => {
    const key = generateApiKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const keys = new ApiKeys(parseApiKeys(keysFileLine("console", [Scope.read], key)).entries);
    expect(keys.identify(key)).toEqual({ name: "console", scopes: new Set(["read"]) });
  });
});

describe("ApiKeys.identify", () => {
  const equal = vi.mocked(crypto.timingSafeEqual);
  afterEach(() => equal.mockClear());
  const keys = new ApiKeys(parseApiKeys([`a write ${sha("key-a")}`, `b read ${sha("key-b")}`, `c metrics ${sha("key-c")}`].join("\n")).entries);

  it("knows each listed key and no other", () => {
    expect(keys.identify("key-a")?.name).toBe("a");
    expect(keys.identify("key-b")?.name).toBe("b");
    expect(keys.identify("key-c")?.scopes).toEqual(new Set(["metrics"]));
    expect(keys.identify("key-")).toBeUndefined();
    expect(keys.identify("")).toBeUndefined();
    expect(keys.identify(sha("key-a"))).toBeUndefined();
  });

  it("compares sha256 digests in constant time against every entry, even after a match", () => {
    keys.identify("key-a");
    expect(equal).toHaveBeenCalledTimes(3);
    for (const [presented, stored] of equal.mock.calls) {
      expect((presented as Buffer).toString("hex")).toBe(sha("key-a"));
      expect((stored as Buffer).length).toBe(32);
    }
    equal.mockClear();
    keys.identify("unknown");
    expect(equal).toHaveBeenCalledTimes(3);
  });
});

describe("presentedKey", () => {
  const basic = (pair: string) => `Basic ${Buffer.from(pair).toString("base64")}`;

  it("takes a Bearer token, or the password of Basic auth whatever the user", () => {
    expect(presentedKey("Bearer abc")).toBe("abc");
    expect(presentedKey("bearer abc")).toBe("abc");
    expect(presentedKey(basic("rockets:the-key"))).toBe("the-key");
    expect(presentedKey(basic("anyone:with:colons"))).toBe("with:colons");
  });

  it("finds nothing without a header, an empty password or another scheme", () => {
    expect(presentedKey(undefined)).toBeUndefined();
    expect(presentedKey("")).toBeUndefined();
    expect(presentedKey("Bearer")).toBeUndefined();
    expect(presentedKey(basic("rockets:"))).toBeUndefined();
    expect(presentedKey(basic("no-colon"))).toBeUndefined();
    expect(presentedKey("Digest abc")).toBeUndefined();
  });
});
