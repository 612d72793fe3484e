// Where, for the partitions this instance owns, a channel may have messages
// in the events stream that no committed state locates: messages parked in
// the stream only (a channel without an entry, past MAX_UNLAUNCHED_CHANNELS)
// or left there when a never-launched channel's entry was given up. A
// channel's actor asks it when it loads (`earlierThrough`, `ownFrom`), and
// reads back from there once the channel can apply something.
//
// Why a bound taken when the partition was acquired is enough:
// - Before this instance took the partition, earlier owners may have left
//   such messages at any stream sequence up to what the partition's consumer
//   had delivered at that moment (`takenAt`). An owner leaves a message
//   without a trace only while its lease is surely still its own (the
//   actor's lease fence, ActorEnvironment.leaseFresh), so that message was
//   delivered before the lease could move. With takenAt 0 (nothing delivered
//   yet: a new stream, or a drain from its start) there are none, and a new
//   channel's launch reads nothing back.
// - After, only this instance can, and it records each channel's lowest
//   such sequence here until a committed state of the channel covers it.
// - A channel with a stored entry has everything earlier writers parked
//   located by that entry; only this instance's own records can be missing
//   from it (a stale former owner created the entry after we found none).
// - Unknown (the partition not begun, or its delivered sequence unreadable):
//   a channel without an entry reads back from the stream's start, as every
//   such channel did before this record existed.
//
// Bounded: at most `maxChannels` records over every partition. Past it, the
// lowest sequence not recorded stands for every channel of its partition
// that has no entry (counted as a reached bound); a channel with an entry
// then relies on its entry alone.

/** One period of owning a partition, as `begin` started it (opaque). */
export type Tenure = object;

/** Stream sequence from which nothing is missing. */
const NOTHING = Number.POSITIVE_INFINITY;

interface PartitionParks {
  /** The consumer's delivered sequence when this instance took the partition; undefined when unknown. */
  readonly takenAt: number | undefined;
  /** Per channel, the lowest stream sequence this instance parked in the stream only. */
  readonly channels: Map<string, number>;
  /** Lowest sequence parked in the stream only and not recorded per channel (the bound was reached). */
  unrecordedFrom: number;
}

export class StreamOnlyParks {
  private readonly partitions = new Map<number, PartitionParks>();
  private recordedCount = 0;

  constructor(
    private readonly maxChannels: number,
    /** Called when a record is refused for the bound. */
    private readonly onBoundReached: () => void = () => undefined,
  ) {}

  /**
   * This instance took the partition; its consumer had delivered through
   * `deliveredThrough` (undefined: unknown). Returns the tenure, for `end`.
   */
  begin(partition: number, deliveredThrough: number | undefined): Tenure {
    this.end(partition);
    const parks: PartitionParks = { takenAt: deliveredThrough, channels: new Map(), unrecordedFrom: NOTHING };
    this.partitions.set(partition, parks);
    return parks;
  }

  /** The partition's current tenure, if begun. */
  tenure(partition: number): Tenure | undefined {
    return this.partitions.get(partition);
  }

  /**
   * The partition was given up (only `tenure`'s, when named: a release that
   * ends after the partition was taken again leaves the new tenure alone).
   * What this instance parked in the stream only was delivered by then, so
   * the next owner's `takenAt` covers it.
   */
  end(partition: number, tenure?: Tenure): void {
    const parks = this.partitions.get(partition);
    if (!parks || (tenure !== undefined && tenure !== parks)) return;
    this.recordedCount -= parks.channels.size;
    this.partitions.delete(partition);
  }

  /** A message of `channel` at stream sequence `seq` is acked with no committed state locating it. */
  record(partition: number, channel: string, seq: number): void {
    const parks = this.partitions.get(partition);
    if (!parks) return;
    const known = parks.channels.get(channel);
    if (known !== undefined) {
      if (seq < known) parks.channels.set(channel, seq);
      return;
    }
    if (this.recordedCount >= this.maxChannels) {
      parks.unrecordedFrom = Math.min(parks.unrecordedFrom, seq);
      this.onBoundReached();
      return;
    }
    parks.channels.set(channel, seq);
    this.recordedCount += 1;
  }

  /**
   * Through which stream sequence earlier owners may have left messages of
   * the partition's channels that no state locates: its takenAt (0: none).
   * Undefined when unknown (not begun, or the delivered sequence unreadable):
   * then anywhere.
   */
  earlierThrough(partition: number): number | undefined {
    return this.partitions.get(partition)?.takenAt;
  }

  /**
   * The lowest stream sequence from which this instance may have left
   * `channel` messages that its stored state (`hasEntry`) does not locate;
   * Infinity when none. Earlier owners' are earlierThrough's.
   */
  ownFrom(partition: number, channel: string, hasEntry: boolean): number {
    const parks = this.partitions.get(partition);
    if (!parks) return NOTHING;
    const recorded = parks.channels.get(channel) ?? NOTHING;
    return hasEntry ? recorded : Math.min(recorded, parks.unrecordedFrom);
  }


  /**
   * A state of `channel` committed from a view that knew it may miss
   * messages from `floorSeq` on: that state locates (or applied) what was
   * recorded at or above it, so the record is no longer needed.
   */
  covered(partition: number, channel: string, floorSeq: number): void {
    const parks = this.partitions.get(partition);
    const recorded = parks?.channels.get(channel);
    if (recorded === undefined || recorded < floorSeq) return;
    parks!.channels.delete(channel);
    this.recordedCount -= 1;
  }

  /** Channels recorded over every partition. */
  get recorded(): number {
    return this.recordedCount;
  }
}
