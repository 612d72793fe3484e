import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "./cursor.js";

const query = { sort: "speed" as const, descending: true, filter: { status: "launched" } };

describe("page cursors", () => {
  it("carry the boundary back for the same query", () => {
    const cursor = encodeCursor(query, { value: 1200, channel: "abc" });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, query)).toEqual({ ok: true, after: { value: 1200, channel: "abc" } });
  });

  it("are refused for another sort, order or filter", () => {
    const cursor = encodeCursor(query, { value: 1200, channel: "abc" });
    expect(decodeCursor(cursor, { ...query, sort: "channel" })).toEqual({ ok: false, reason: expect.stringMatching(/another sort, order or filter/) });
    expect(decodeCursor(cursor, { ...query, descending: false })).toEqual({ ok: false, reason: expect.stringMatching(/another sort, order or filter/) });
    expect(decodeCursor(cursor, { ...query, filter: {} })).toEqual({ ok: false, reason: expect.stringMatching(/another sort, order or filter/) });
    expect(decodeCursor(cursor, { ...query, filter: { status: "launched", mission: "APOLLO" } })).toEqual({ ok: false, reason: expect.stringMatching(/another sort, order or filter/) });
  });

  it("are refused when forged or damaged", () => {
    for (const bad of ["", "!!", "abc", Buffer.from("[]").toString("base64url"), Buffer.from('{"v":1}').toString("base64url")]) {
      expect(decodeCursor(bad, query)).toEqual({ ok: false, reason: "is not a cursor returned by this API" });
    }
    const wrongValueType = Buffer.from(JSON.stringify({ v: 1, s: "speed", d: true, f: ["launched", null, null], k: "fast", c: "a" })).toString("base64url");
    expect(decodeCursor(wrongValueType, query)).toEqual({ ok: false, reason: "is not a cursor returned by this API" });
  });
});
