// The exact filters of the list (status, type, mission): for each value of
// each field, the set of rockets holding it, and for each combination of two
// or three given fields, how many rockets match, so that a filtered list
// knows its `total` in O(1) and can choose between walking an order and
// sorting the (rare) matches.
//
// Values are user text and are only ever Map keys (never object keys), so
// "__proto__" filters like any other value.

export interface RocketFilter {
  status?: string;
  type?: string;
  mission?: string;
}

export type FilterField = keyof RocketFilter;
export const FILTER_FIELDS: readonly FilterField[] = ["status", "type", "mission"];

/** What the index reads of an item: its current filter values. */
export type Filterable = Readonly<Record<FilterField, string>>;

/** Which fields (status, type, mission) the multi-field filters give; their match counts make `total` O(1). */
const COMBINATIONS: readonly [boolean, boolean, boolean][] = [
  [true, true, false],
  [true, false, true],
  [false, true, true],
  [true, true, true],
];

/**
 * Names the fields a filter gives and their values. Each value is length-
 * prefixed, so two different filters never share a key whatever they hold.
 */
function combinationKey(status: string | undefined, type: string | undefined, mission: string | undefined): string {
  const part = (v: string | undefined) => (v === undefined ? "-" : `${v.length}:${v}`);
  return `${part(status)}|${part(type)}|${part(mission)}`;
}

/** A filter's candidates: the smallest per-value set among its fields, and how many items match all of them. */
export interface Candidates<T> {
  /** Undefined when the filter gives no field (every item is a candidate). */
  set: Set<T> | undefined;
  /** Items matching every given field; undefined when no field is given. */
  total: number | undefined;
}

export class FilterIndex<T> {
  private readonly byValue: Record<FilterField, Map<string, Set<T>>> = {
    status: new Map(),
    type: new Map(),
    mission: new Map(),
  };
  /** Items per combination of two or three filter values, keyed by combinationKey. */
  private readonly combinations = new Map<string, number>();

  /** Indexes `item` under `values` (the values it must later be removed with). */
  add(item: T, values: Filterable): void {
    this.countCombinations(values, 1);
    for (const f of FILTER_FIELDS) {
      let set = this.byValue[f].get(values[f]);
      if (!set) this.byValue[f].set(values[f], (set = new Set()));
      set.add(item);
    }
  }

  remove(item: T, values: Filterable): void {
    this.countCombinations(values, -1);
    for (const f of FILTER_FIELDS) {
      const set = this.byValue[f].get(values[f]);
      if (!set) continue;
      set.delete(item);
      if (set.size === 0) this.byValue[f].delete(values[f]);
    }
  }

  candidates(filter: RocketFilter): Candidates<T> {
    const given = FILTER_FIELDS.filter((f) => filter[f] !== undefined);
    let set: Set<T> | undefined;
    for (const f of given) {
      const values = this.byValue[f].get(filter[f]!);
      if (!values) return { set: new Set(), total: 0 };
      if (!set || values.size < set.size) set = values;
    }
    if (given.length === 0) return { set: undefined, total: undefined };
    if (given.length === 1) return { set, total: set!.size };
    return { set, total: this.combinations.get(combinationKey(filter.status, filter.type, filter.mission)) ?? 0 };
  }

  private countCombinations(values: Filterable, delta: 1 | -1): void {
    for (const [s, t, m] of COMBINATIONS) {
      const key = combinationKey(s ? values.status : undefined, t ? values.type : undefined, m ? values.mission : undefined);
      const n = (this.combinations.get(key) ?? 0) + delta;
      if (n === 0) this.combinations.delete(key);
      else this.combinations.set(key, n);
    }
  }
}
