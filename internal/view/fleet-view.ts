// The in-memory view of the whole fleet that every query reads.
//
// Every rocket sits in one ordered index per sort key, maintained on each
// change (a removal and an insert, O(log n) plus a small splice, only for the
// keys whose value changed), so the first page of any order is read without
// sorting, and a page after a cursor starts with one binary search. Exact
// filters are answered from per-value sets: a query either walks the order
// skipping non-matches or, when matches are rare, sorts just the matches,
// whichever visits fewer rockets (filter-index.ts). The summary is kept
// as rockets change, bounded and exact (fleet-summary.ts).
//
// Pagination is keyset-based: a page ends at a (sort value, channel) point and
// the next page starts strictly after it. A rocket whose sort value does not
// change while a client pages is therefore returned exactly once, however many
// other rockets are added, removed or reordered meanwhile; a rocket whose own
// sort value moves across the boundary may be seen twice or not at all (it
// changed: the client sees where it is now or where it was).

import { SortedList } from "./sorted-list.js";
import { FilterIndex, type RocketFilter } from "./filter-index.js";
import { DEFAULT_SUMMARY_TOP_LABELS, IncrementalSummary, type Summary } from "./fleet-summary.js";
import { sameRocketView, type RocketView } from "./rocket-view.js";
import { flatString, SORT_KEYS, sortValueOf, type SortKey, type SortValue } from "./sort-keys.js";

export interface ViewEntry {
  readonly rocket: RocketView;
  /** KV revision of the state this rocket was last changed by (an ETag). */
  readonly revision: number;
}

export type { RocketFilter } from "./filter-index.js";
export type { Summary } from "./fleet-summary.js";

/** A point in an order: the sort value and channel of the last rocket a page returned. */
export interface Boundary {
  value: SortValue;
  channel: string;
}

export interface ListQuery {
  sort: SortKey;
  descending: boolean;
  filter: RocketFilter;
  /** At least 1. */
  limit: number;
  /** Start strictly after this point of the order. */
  after?: Boundary;
}

export interface Page {
  rockets: RocketView[];
  /** Rockets matching the filter, on every page. */
  total: number;
  /** Where the next page starts; null when this page reached the end. */
  next: Boundary | null;
}

export interface RocketChange {
  channel: string;
  /** The rocket now, or null when it left the view. */
  rocket: RocketView | null;
  revision: number;
}

export type ChangeListener = (change: RocketChange) => void;

/** A change a resuming client has not seen: the channel's current state, or its removal. */
export interface MissedChange {
  channel: string;
  revision: number;
  removed: boolean;
}

/**
 * Removals remembered for resuming clients (at least this many). Older ones
 * are forgotten, and a client resuming from before them is told to reload.
 */
export const MAX_REMEMBERED_REMOVALS = 10_000;

interface Slot {
  /** Flat (see flatString): the tie-breaker of every comparison. */
  channel: string;
  rocket: RocketView;
  revision: number;
  /** Sort values by position in SORT_KEYS. */
  keys: SortValue[];
  /** Sync pass that last saw this channel. */
  seen: number;
}

const KEY_INDEX = new Map<SortKey, number>(SORT_KEYS.map((k, i) => [k, i]));

function compareBy(i: number) {
  return (a: Slot, b: Slot): number => {
    const x = a.keys[i]!;
    const y = b.keys[i]!;
    if (x < y) return -1;
    if (x > y) return 1;
    return a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0;
  };
}

/**
 * The rocket's sort values. Each is a function of the field of the same name
 * alone, so one whose field did not change since `before` is reused: most
 * updates change the speed and the update time only, and an instant key
 * costs a date parse.
 */
function keysOf(rocket: RocketView, before?: Slot): SortValue[] {
  // Pushed one by one, the array stays packed (map() would make it holey: slower reads in every comparison).
  const keys: SortValue[] = [];
  for (let i = 0; i < SORT_KEYS.length; i += 1) {
    const k = SORT_KEYS[i]!;
    keys.push(before !== undefined && before.rocket[k] === rocket[k] ? before.keys[i]! : sortValueOf(rocket, k));
  }
  return keys;
}

/** Whether the filters (status, type, mission) index the two differently. */
function filteredDifferently(a: RocketView, b: RocketView): boolean {
  return a.status !== b.status || a.type !== b.type || a.mission !== b.mission;
}


/**
 * Walking an order visits about limit * size / matches rockets; sorting the
 * matches costs about matches * log2(matches). The walk is preferred unless it
 * would visit this many times more rockets than the candidate set holds.
 */
const WALK_PREFERENCE = 4;

export class FleetView {
  private readonly slots = new Map<string, Slot>();
  private readonly indexes = SORT_KEYS.map((_, i) => new SortedList<Slot>(compareBy(i)));
  private readonly filters = new FilterIndex<Slot>();
  private readonly counts: IncrementalSummary;
  private pass = 0;
  /** Highest revision any change carried: the view holds every change up to it. */
  private latest = 0;
  /** Resuming from a revision below this cannot be answered exactly (removals were forgotten). */
  private resumableFrom = 0;
  private readonly removals: MissedChange[] = [];
  private loaded = false;
  private readonly listeners = new Set<ChangeListener>();

  /** @param summaryTopLabels types and missions the summary lists by name (the rest: "other"). */
  constructor(summaryTopLabels = DEFAULT_SUMMARY_TOP_LABELS) {
    this.counts = new IncrementalSummary(summaryTopLabels);
  }

  get size(): number {
    return this.slots.size;
  }

  /** True once a first sync pass over the whole bucket completed. */
  get ready(): boolean {
    return this.loaded;
  }

  get(channel: string): ViewEntry | undefined {
    return this.slots.get(channel);
  }

  /** The highest revision the view has taken in (0 before any). */
  get revision(): number {
    return this.latest;
  }

  /**
   * What a client that saw every change up to `revision` has missed, oldest
   * first: each rocket changed since (to be sent as it is now) and each
   * removal since. Limited to `channel` when given. Undefined when the view
   * cannot list it exactly: removals from then were forgotten, a resync pass
   * removed rockets at unknown revisions, or `revision` is ahead of this view
   * (another instance's, or the bucket was recreated). The client must then
   * reload.
   */
  changesSince(revision: number, channel?: string): MissedChange[] | undefined {
    if (revision < this.resumableFrom || revision > this.latest) return undefined;
    const out: MissedChange[] = [];
    if (channel === undefined) {
      for (const [key, slot] of this.slots) if (slot.revision > revision) out.push({ channel: key, revision: slot.revision, removed: false });
    } else {
      const slot = this.slots.get(channel);
      if (slot && slot.revision > revision) out.push({ channel, revision: slot.revision, removed: false });
    }
    for (const r of this.removals) {
      if (r.revision > revision && (channel === undefined || r.channel === channel) && !this.slots.has(r.channel)) out.push(r);
    }
    return out.sort((a, b) => a.revision - b.revision);
  }

  /** Every rocket as a change, oldest revision first: a snapshot to send a new client. */
  snapshot(): MissedChange[] {
    const out: MissedChange[] = [];
    for (const [channel, slot] of this.slots) out.push({ channel, revision: slot.revision, removed: false });
    return out.sort((a, b) => a.revision - b.revision);
  }

  /** Sets a channel's rocket. Returns false (and notifies nobody) when nothing visible changed. */
  put(channel: string, rocket: RocketView, revision: number): boolean {
    this.latest = Math.max(this.latest, revision);
    const slot = this.slots.get(channel);
    if (!slot) {
      const created: Slot = { channel: flatString(channel), rocket, revision, keys: keysOf(rocket), seen: this.pass };
      this.slots.set(channel, created);
      for (const index of this.indexes) index.insert(created);
      this.index(created);
      this.notify({ channel, rocket, revision });
      return true;
    }
    slot.seen = this.pass;
    if (sameRocketView(slot.rocket, rocket)) return false;
    const keys = keysOf(rocket, slot);
    const moved = SORT_KEYS.map((_, i) => keys[i] !== slot.keys[i]);
    const refiltered = filteredDifferently(slot.rocket, rocket);
    moved.forEach((m, i) => m && this.indexes[i]!.remove(slot));
    if (refiltered) this.filters.remove(slot, slot.rocket);
    this.counts.replace(slot.rocket, rocket);
    slot.rocket = rocket;
    slot.revision = revision;
    slot.keys = keys;
    moved.forEach((m, i) => m && this.indexes[i]!.insert(slot));
    if (refiltered) this.filters.add(slot, slot.rocket);
    this.notify({ channel, rocket, revision });
    return true;
  }

  /** Removes a channel's rocket; returns whether it was in the view. */
  remove(channel: string, revision: number): boolean {
    this.latest = Math.max(this.latest, revision);
    // Remembered even for a channel this view never held: a client fed by
    // another instance, or before a restart, may hold it.
    this.rememberRemoval(channel, revision);
    const slot = this.slots.get(channel);
    if (!slot) return false;
    this.slots.delete(channel);
    for (const index of this.indexes) index.remove(slot);
    this.unindex(slot);
    this.notify({ channel, rocket: null, revision });
    return true;
  }

  /**
   * Starts a pass over the whole bucket (the first load, or a reload after the
   * watch was restarted). Channels not put or retained before endSync are
   * removed then: they left the bucket while nobody was watching.
   */
  beginSync(): void {
    this.pass += 1;
  }

  /** Marks a channel as still present in this pass without changing it (e.g. its entry could not be read). */
  retain(channel: string): void {
    const slot = this.slots.get(channel);
    if (slot) slot.seen = this.pass;
  }

  /** Ends the pass; returns how many rockets were gone. The view is ready from the first endSync on. */
  endSync(): number {
    const gone = [...this.slots.values()].filter((s) => s.seen < this.pass);
    for (const slot of gone) this.remove(slot.channel, slot.revision);
    // They left at revisions nobody saw: nobody can resume across that.
    if (gone.length > 0) this.resumableFrom = this.latest + 1;
    this.loaded = true;
    return gone.length;
  }

  list(query: ListQuery): Page {
    const i = KEY_INDEX.get(query.sort)!;
    const index = this.indexes[i]!;
    const { status, type, mission } = query.filter;
    const matches = (s: Slot) =>
      (status === undefined || s.rocket.status === status) &&
      (type === undefined || s.rocket.type === type) &&
      (mission === undefined || s.rocket.mission === mission);

    const { set: candidates, total = this.slots.size } = this.filters.candidates(query.filter);
    if (total === 0) return { rockets: [], total: 0, next: null };

    const take = query.limit + 1;
    let found: Slot[];
    const walkCost = (take * this.slots.size) / total;
    if (!candidates || walkCost <= WALK_PREFERENCE * candidates.size) {
      found = [];
      const from = query.after ? index.seek(this.probe(i, query.after), !query.descending) : query.descending ? index.end() : index.start();
      index.walk(from, !query.descending, (s) => {
        if (candidates && !matches(s)) return true;
        found.push(s);
        return found.length < take;
      });
    } else {
      found = this.sortedMatches(i, candidates, matches, query);
    }
    const more = found.length > query.limit;
    if (more) found.length = query.limit;
    const last = found[found.length - 1];
    return {
      rockets: found.map((s) => s.rocket),
      total,
      next: more && last ? { value: last.keys[i]!, channel: last.channel } : null,
    };
  }

  /** The fleet's counts, kept as rockets change: reading it costs O(topLabels), whatever the fleet holds. */
  summary(): Summary {
    return this.counts.read();
  }

  /** Label entries every summary read so far visited (for tests and benchmarks: it does not grow with the fleet). */
  get summaryLabelsVisited(): number {
    return this.counts.labelsVisited;
  }

  /**
   * Calls `listener` after every visible change, synchronously and in KV
   * order; returns the unsubscribe function. Listeners must not throw.
   */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private rememberRemoval(channel: string, revision: number): void {
    this.removals.push({ channel, revision, removed: true });
    // Trimmed a tenth at a time, so that each removal costs O(1) amortized.
    if (this.removals.length > MAX_REMEMBERED_REMOVALS * 1.1) {
      const forgotten = this.removals.splice(0, this.removals.length - MAX_REMEMBERED_REMOVALS);
      for (const r of forgotten) this.resumableFrom = Math.max(this.resumableFrom, r.revision);
    }
  }

  private notify(change: RocketChange): void {
    for (const l of this.listeners) l(change);
  }

  /** A stand-in slot that compares as the point `at` in order i (the list only reads keys[i] and channel). */
  private probe(i: number, at: Boundary): Slot {
    const keys: SortValue[] = [];
    keys[i] = at.value;
    return { channel: at.channel, keys } as Slot;
  }

  private sortedMatches(i: number, candidates: Set<Slot>, matches: (s: Slot) => boolean, query: ListQuery): Slot[] {
    const compare = compareBy(i);
    const sign = query.descending ? -1 : 1;
    const probe = query.after ? this.probe(i, query.after) : undefined;
    const out: Slot[] = [];
    for (const s of candidates) {
      if (!matches(s)) continue;
      if (probe && sign * compare(s, probe) <= 0) continue;
      out.push(s);
    }
    out.sort((a, b) => sign * compare(a, b));
    if (out.length > query.limit + 1) out.length = query.limit + 1;
    return out;
  }

  private index(slot: Slot): void {
    this.filters.add(slot, slot.rocket);
    this.counts.add(slot.rocket);
  }

  private unindex(slot: Slot): void {
    this.filters.remove(slot, slot.rocket);
    this.counts.remove(slot.rocket);
  }
}
