// The messages the hostile suite sends, valid by the domain's own rules
// (checked here, so a refusal at ingest is never the suite's own mistake),
// and channel ids chosen so that every partition gets its share.

import { validateMessage, type RocketMessage } from "../../internal/domain/message.js";
import { partitionOf } from "../../internal/domain/partition.js";
import { channelId } from "../../internal/testing/rocket-traffic.js";

const TIME = "2022-02-02T19:39:05.86337+01:00";

type Payload = Record<string, unknown>;

export function message(channel: string, messageNumber: number, messageType: string, payload: Payload, messageTime = TIME): RocketMessage {
  const v = validateMessage({ metadata: { channel, messageNumber, messageTime, messageType }, message: payload });
  if (!v.ok) throw new Error(`the suite built an invalid message: ${JSON.stringify(v.problems)}`);
  return v.value;
}

export const launched = (channel: string, type: string, mission: string, launchSpeed: number) =>
  message(channel, 1, "RocketLaunched", { type, mission, launchSpeed });
export const speedUp = (channel: string, n: number, by: number) => message(channel, n, "RocketSpeedIncreased", { by });

/** `count` channel ids of seed `seed`, one per partition first, round-robin: channel i lies in partition i % partitions. */
export function channelsPerPartition(seed: number, partitions: number, perPartition: number): string[][] {
  const buckets: string[][] = Array.from({ length: partitions }, () => []);
  for (let i = 0; buckets.some((b) => b.length < perPartition); i += 1) {
    const c = channelId(seed, i);
    const bucket = buckets[partitionOf(c, partitions)]!;
    if (bucket.length < perPartition) bucket.push(c);
  }
  return buckets;
}

/** Splits into JSON array bodies of at most `size` messages (ingest's batch form). */
export function batches(messages: RocketMessage[], size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < messages.length; i += size) out.push(JSON.stringify(messages.slice(i, i + size)));
  return out;
}
