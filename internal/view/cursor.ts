// Page cursors: opaque to clients (base64url of a small JSON document), and
// bound to the query that produced them, so a cursor is only ever used to
// continue the same order under the same filter.

import type { Boundary, RocketFilter } from "./fleet-view.js";
import { isSortValueFor, type SortKey } from "./sort-keys.js";

export interface CursorQuery {
  sort: SortKey;
  descending: boolean;
  filter: RocketFilter;
}

interface CursorDocument {
  v: 1;
  s: SortKey;
  d: boolean;
  f: [string | null, string | null, string | null];
  k: string | number;
  c: string;
}

/** A decoded cursor: the point to continue from, or why the cursor was refused (safe to show to the client). */
export type DecodedCursor = { ok: true; after: Boundary } | { ok: false; reason: string };

const NOT_A_CURSOR = "is not a cursor returned by this API";

const filterTuple = (f: RocketFilter): CursorDocument["f"] => [f.status ?? null, f.type ?? null, f.mission ?? null];

export function encodeCursor(query: CursorQuery, at: Boundary): string {
  const doc: CursorDocument = { v: 1, s: query.sort, d: query.descending, f: filterTuple(query.filter), k: at.value, c: at.channel };
  return Buffer.from(JSON.stringify(doc), "utf8").toString("base64url");
}

/** The point a cursor continues from, or why it is refused: malformed, or made for another query. Never throws. */
export function decodeCursor(cursor: string, query: CursorQuery): DecodedCursor {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return { ok: false, reason: NOT_A_CURSOR };
  let doc: Partial<CursorDocument>;
  try {
    doc = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<CursorDocument>;
  } catch {
    return { ok: false, reason: NOT_A_CURSOR };
  }
  if (
    typeof doc !== "object" ||
    doc === null ||
    doc.v !== 1 ||
    typeof doc.c !== "string" ||
    !Array.isArray(doc.f) ||
    typeof doc.s !== "string" ||
    typeof doc.d !== "boolean"
  ) {
    return { ok: false, reason: NOT_A_CURSOR };
  }
  const expected = filterTuple(query.filter);
  if (doc.s !== query.sort || doc.d !== query.descending || doc.f.length !== 3 || doc.f.some((v, i) => v !== expected[i])) {
    return { ok: false, reason: "was made for another sort, order or filter; repeat the query that returned it" };
  }
  if (!isSortValueFor(query.sort, doc.k)) return { ok: false, reason: NOT_A_CURSOR };
  return { ok: true, after: { value: doc.k, channel: doc.c } };
}
