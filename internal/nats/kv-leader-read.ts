// Reads a KV key's latest entry from its stream's leader, through the
// JetStream API (STREAM.MSG.GET), never through a direct get that any replica
// may answer. A replica can lag behind the leader, and right after an R3
// bucket is created its direct-get responders may not be up yet ("no
// responders"); decisions that compare-and-set on a key (claims, first writer
// wins) read it here.

import type { JetStreamManager } from "@nats-io/jetstream";

/** The header KV puts on deletes and purges; the server's TTL markers carry Nats-Marker-Reason instead. */
const KV_OPERATION = "KV-Operation";
const MARKER_REASON = "Nats-Marker-Reason";

export interface LeaderEntry {
  /** Null when deleted, purged, expired or never written. */
  value: string | null;
  /** The entry's revision; 0 when the key was never written. */
  revision: number;
  /** A header of the entry (a delete marker's own headers included). */
  header(name: string): string | undefined;
}

export async function readFromLeader(jsm: JetStreamManager, bucket: string, key: string): Promise<LeaderEntry> {
  const stored = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
  if (stored === null) return { value: null, revision: 0, header: () => undefined };
  const deleted = stored.header?.has(MARKER_REASON) || (stored.header?.get(KV_OPERATION) ?? "") !== "";
  const header = (name: string) => {
    const v = stored.header?.get(name);
    return v === undefined || v === "" ? undefined : v;
  };
  return { value: deleted ? null : stored.string(), revision: stored.seq, header };
}
