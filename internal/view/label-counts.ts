// How many rockets carry each value of one user-chosen label (a type, a
// mission), kept in count order as rockets change, so that the largest groups
// are read without sorting: reading the top n visits n entries whatever the
// number of distinct values. A change moves one entry (a removal and an insert
// in a SortedList: a binary search plus a small splice).
//
// Values are user text: they are only ever Map keys here, and the counts are
// handed out in null-prototype records, so "__proto__" or "constructor" count
// like any other value.

import { SortedList } from "./sorted-list.js";

interface Entry {
  readonly value: string;
  count: number;
}

/** Largest count first, ties by value (code unit order): a total order, since values are unique. */
function byCountDescending(a: Entry, b: Entry): number {
  if (a.count !== b.count) return b.count - a.count;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The largest groups and what they leave out. */
export interface TopCounts {
  /** The n largest groups by value (null prototype), ties broken by value. */
  top: Record<string, number>;
  /** Rockets in groups not listed. */
  rest: number;
  /** Entries visited to answer (at most n): what a read cost. */
  visited: number;
}

export class LabelCounts {
  private readonly entries = new Map<string, Entry>();
  private readonly order = new SortedList<Entry>(byCountDescending);

  /** Distinct values held (each with at least one rocket). */
  get distinct(): number {
    return this.entries.size;
  }

  add(value: string): void {
    const entry = this.entries.get(value);
    if (!entry) {
      const created = { value, count: 1 };
      this.entries.set(value, created);
      this.order.insert(created);
      return;
    }
    this.order.remove(entry);
    entry.count += 1;
    this.order.insert(entry);
  }

  /** Takes one rocket off `value`; a value with none left is forgotten. */
  remove(value: string): void {
    const entry = this.entries.get(value);
    if (!entry) return;
    this.order.remove(entry);
    entry.count -= 1;
    if (entry.count === 0) this.entries.delete(value);
    else this.order.insert(entry);
  }

  count(value: string): number {
    return this.entries.get(value)?.count ?? 0;
  }

  /** The `n` largest groups; `total` is the number of rockets counted (so the rest costs nothing to know). */
  top(n: number, total: number): TopCounts {
    const top: Record<string, number> = Object.create(null) as Record<string, number>;
    let listed = 0;
    let visited = 0;
    if (n > 0) {
      this.order.walk(this.order.start(), true, (e) => {
        top[e.value] = e.count;
        listed += e.count;
        visited += 1;
        return visited < n;
      });
    }
    return { top, rest: total - listed, visited };
  }
}
