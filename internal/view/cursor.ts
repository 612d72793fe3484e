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

/** Why a cursor was refused; the message is safe to show to the client. */
export class InvalidCursorError extends Error {
  override name = "InvalidCursorError";
}

const filterTuple = (f: RocketFilter): CursorDocument["f"] => [f.status ?? null, f.type ?? null, f.mission ?? null];

export function encodeCursor(query: CursorQuery, at: Boundary): string {
  const doc: CursorDocument = { v: 1, s: query.sort, d: query.descending, f: filterTuple(query.filter), k: at.value, c: at.channel };
  return Buffer.from(JSON.stringify(doc), "utf8").toString("base64url");
}

/** The point a cursor continues from; throws InvalidCursorError when it is malformed or made for another query. */
export function decodeCursor(cursor: string, query: CursorQuery): Boundary {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError("is not a cursor returned by this API");
  let doc: Partial<CursorDocument>;
  try {
    doc = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<CursorDocument>;
  } catch {
    throw new InvalidCursorError("is not a cursor returned by this API");
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
    throw new InvalidCursorError("is not a cursor returned by this API");
  }
  const expected = filterTuple(query.filter);
  if (doc.s !== query.sort || doc.d !== query.descending || doc.f.length !== 3 || doc.f.some((v, i) => v !== expected[i])) {
    throw new InvalidCursorError("was made for another sort, order or filter; repeat the query that returned it");
  }
  if (!isSortValueFor(query.sort, doc.k)) throw new InvalidCursorError("is not a cursor returned by this API");
  return { value: doc.k, channel: doc.c };
}
