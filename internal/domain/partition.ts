// Channel -> partition. FNV-1a 32-bit over the channel's UTF-8 bytes, modulo
// the partition count: the same function nats-server uses for
// `{{partition(n,1)}}` mappings, so an operator may move the partitioning into
// server config later and nothing moves.

const encoder = new TextEncoder();

export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function partitionOf(channel: string, partitions: number): number {
  return fnv1a32(channel) % partitions;
}

/** Every event's subject starts with this; the events stream takes `rockets.events.>`. */
export const SUBJECT_PREFIX = "rockets.events";

/**
 * The subject a channel's events are stored under: its partition, then the
 * channel itself, so a partition is one wildcard (`rockets.events.<p>.*`) and
 * a channel's history one filter (`rockets.events.*.<channel>`).
 */
export function eventSubject(partition: number, channel: string): string {
  return `${SUBJECT_PREFIX}.${partition}.${channel}`;
}
