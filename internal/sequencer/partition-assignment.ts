// Which live sequencer instance should own which partition.
//
// Every instance computes this from the same input (the sorted ids of the
// members it sees alive) and gets the same answer, so no coordinator is
// needed: an instance acquires the leases of the partitions assigned to it and
// releases the others.
//
// Guarantees: every partition is assigned to exactly one member; the shares
// differ by at most one (the first `partitions % n` members in sorted order
// take one more); and the choice within those quotas follows rendezvous
// hashing, so a member joining or leaving moves few partitions besides the
// ones it takes or frees.

const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;

function hashText(text: string): number {
  let hash = fnvOffset;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, fnvPrime);
  }
  return hash >>> 0;
}

/** murmur3's finaliser: spreads nearby inputs (partition numbers) over the whole range. */
function mix(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function score(memberHash: number, partition: number): number {
  return mix(memberHash ^ Math.imul(partition + 1, 0x9e3779b1));
}

/**
 * Assigns partitions 0..partitions-1 to `members` (any order, duplicates
 * ignored). Returns each member's partitions in ascending order; a member may
 * get none when there are more members than partitions.
 */
export function assignPartitions(members: readonly string[], partitions: number): Map<string, number[]> {
  const sorted = [...new Set(members)].sort();
  const result = new Map<string, number[]>(sorted.map((m) => [m, []]));
  if (sorted.length === 0) return result;
  const base = Math.floor(partitions / sorted.length);
  const extra = partitions % sorted.length;
  const quota = sorted.map((_, i) => base + (i < extra ? 1 : 0));
  const hashes = sorted.map(hashText);
  const order = sorted.map((_, i) => i);
  for (let p = 0; p < partitions; p += 1) {
    // Highest score wins; ties (practically never) go to the smaller id.
    order.sort((a, b) => score(hashes[b]!, p) - score(hashes[a]!, p) || a - b);
    const winner = order.find((i) => quota[i]! > 0)!;
    quota[winner] = quota[winner]! - 1;
    result.get(sorted[winner]!)!.push(p);
  }
  return result;
}

/** The partitions `member` should own among `members`; empty when it is not one of them. */
export function partitionsFor(member: string, members: readonly string[], partitions: number): number[] {
  return assignPartitions(members, partitions).get(member) ?? [];
}
