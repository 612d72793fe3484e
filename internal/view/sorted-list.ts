// An ordered collection kept sorted under inserts and removals: a list of
// sorted chunks (each at most 2 * load items), so an insert or a removal is a
// binary search plus a splice of one small array, and reading a page from any
// position costs only the page. 100,000 items fit in a few hundred chunks.
//
// The comparator must be a total order in which no two distinct items compare
// equal (the view breaks ties by channel), because removal finds an item by
// comparing, not by identity.

export type Comparator<T> = (a: T, b: T) => number;

/** A position between items: before chunks[chunk][index]. */
export interface Position {
  chunk: number;
  index: number;
}

const DEFAULT_LOAD = 256;

export class SortedList<T> {
  private chunks: T[][] = [];
  private count = 0;

  constructor(
    private readonly compare: Comparator<T>,
    private readonly load = DEFAULT_LOAD,
  ) {}

  get size(): number {
    return this.count;
  }

  insert(item: T): void {
    if (this.chunks.length === 0) {
      this.chunks.push([item]);
      this.count = 1;
      return;
    }
    // The first chunk whose last item is not below `item`; past the end goes into the last chunk.
    let c = this.chunkAtOrAfter(item, false);
    if (c === this.chunks.length) c -= 1;
    const chunk = this.chunks[c]!;
    chunk.splice(this.indexIn(chunk, item, false), 0, item);
    this.count += 1;
    if (chunk.length > 2 * this.load) this.chunks.splice(c + 1, 0, chunk.splice(this.load));
  }

  /** Removes the item comparing equal to `item`; returns whether there was one. */
  remove(item: T): boolean {
    const c = this.chunkAtOrAfter(item, false);
    const chunk = this.chunks[c];
    if (!chunk) return false;
    const i = this.indexIn(chunk, item, false);
    if (i >= chunk.length || this.compare(chunk[i]!, item) !== 0) return false;
    chunk.splice(i, 1);
    this.count -= 1;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
    } else if (chunk.length < this.load / 4) {
      this.mergeWithNeighbour(c);
    }
    return true;
  }

  /** The position of the first item after `probe` (`strict`) or not below it. */
  seek(probe: T, strict: boolean): Position {
    const c = this.chunkAtOrAfter(probe, strict);
    const chunk = this.chunks[c];
    if (!chunk) return this.end();
    return { chunk: c, index: this.indexIn(chunk, probe, strict) };
  }

  start(): Position {
    return { chunk: 0, index: 0 };
  }

  end(): Position {
    return { chunk: this.chunks.length, index: 0 };
  }

  /**
   * Visits items from `from` forwards (the item at `from` first) or backwards
   * (the item just before `from` first) until `visit` returns false or the
   * list ends.
   */
  walk(from: Position, forward: boolean, visit: (item: T) => boolean): void {
    const chunks = this.chunks;
    if (forward) {
      for (let c = from.chunk, i = from.index; c < chunks.length; c += 1, i = 0) {
        const chunk = chunks[c]!;
        for (; i < chunk.length; i += 1) if (!visit(chunk[i]!)) return;
      }
      return;
    }
    let c = from.chunk;
    let i = from.index - 1;
    if (c >= chunks.length) {
      c = chunks.length - 1;
      i = (chunks[c]?.length ?? 0) - 1;
    }
    for (; c >= 0; c -= 1, i = (chunks[c]?.length ?? 0) - 1) {
      const chunk = chunks[c]!;
      for (; i >= 0; i -= 1) if (!visit(chunk[i]!)) return;
    }
  }

  toArray(): T[] {
    return this.chunks.flat();
  }

  /** Index of the first chunk whose last item is >= item (> item when strict); chunks.length if none. */
  private chunkAtOrAfter(item: T, strict: boolean): number {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.chunks[mid]!;
      const d = this.compare(chunk[chunk.length - 1]!, item);
      if (d < 0 || (strict && d === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first item in `chunk` that is >= item (> item when strict). */
  private indexIn(chunk: T[], item: T, strict: boolean): number {
    let lo = 0;
    let hi = chunk.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const d = this.compare(chunk[mid]!, item);
      if (d < 0 || (strict && d === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private mergeWithNeighbour(c: number): void {
    const next = this.chunks[c + 1];
    if (next && this.chunks[c]!.length + next.length <= 2 * this.load) {
      this.chunks[c]!.push(...next);
      this.chunks.splice(c + 1, 1);
      return;
    }
    const prev = this.chunks[c - 1];
    if (prev && prev.length + this.chunks[c]!.length <= 2 * this.load) {
      prev.push(...this.chunks[c]!);
      this.chunks.splice(c, 1);
    }
  }
}
