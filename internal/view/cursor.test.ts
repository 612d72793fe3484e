import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, InvalidCursorError } from "./cursor.js";

const query = { sort: "speed" as const, descending: true, filter: { status: "launched" } };

describe("page cursors", () => {
  it("carry the boundary back for the same query", () => {
    const cursor = encodeCursor(query, { value: 1200, channel: "abc" });
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, query)).toEqual({ value: 1200, channel: "abc" });
  });

  it("are refused for another sort, order or filter", () => {
    const cursor = encodeCursor(query, { value: 1200, channel: "abc" });
    expect(() => decodeCursor(cursor, { ...query, sort: "channel" })).toThrow(InvalidCursorError);
    expect(() => decodeCursor(cursor, { ...query, descending: false })).toThrow(InvalidCursorError);
    expect(() => decodeCursor(cursor, { ...query, filter: {} })).toThrow(InvalidCursorError);
    expect(() => decodeCursor(cursor, { ...query, filter: { status: "launched", mission: "APOLLO" } })).toThrow(InvalidCursorError);
  });

  it("are refused when forged or damaged", () => {
    for (const bad of ["", "!!", "abc", Buffer.from("[]").toString("base64url"), Buffer.from('{"v":1}').toString("base64url")]) {
      expect(() => decodeCursor(bad, query)).toThrow(InvalidCursorError);
    }
    const wrongValueType = Buffer.from(JSON.stringify({ v: 1, s: "speed", d: true, f: ["launched", null, null], k: "fast", c: "a" })).toString("base64url");
    expect(() => decodeCursor(wrongValueType, query)).toThrow(InvalidCursorError);
  });
});
