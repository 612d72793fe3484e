// A rocket as the query API shows it: the sequencer's Rocket plus how many
// messages wait behind a gap, since when (`gap`), and the numbers a gap
// policy gave up (`skipped`, present only once something was skipped). Built from a stored ChannelState with its fields
// checked, because the view sorts and serializes them and a malformed entry in
// the bucket must be refused, not crash a request.

import { RocketStatus, type Rocket } from "../domain/rocket.js";
import type { ChannelState, SkippedRange } from "../domain/sequencing.js";

export interface RocketView extends Rocket {
  /** Messages received for this rocket but waiting for an earlier one to arrive. */
  pendingMessages: number;
  /** The open gap: when it was recorded (UTC). Absent when none is open. */
  gap?: { since: string };
  /** Numbers given up by the gap policy (GAP_POLICY=skip), the most recent ranges. Absent when none. */
  skipped?: SkippedRange[];
}

export class InvalidRocketStateError extends Error {
  override name = "InvalidRocketStateError";
}

const isText = (v: unknown): v is string => typeof v === "string";
const isStatus = (v: unknown): v is RocketStatus => v === RocketStatus.Launched || v === RocketStatus.Exploded;

/**
 * The rocket a channel's state shows, or null while the channel has no
 * applied launch. The result always has the same fields in the same order.
 */
export function rocketViewOf(channel: string, state: ChannelState): RocketView | null {
  const r = state.rocket as Partial<Record<keyof Rocket, unknown>> | null;
  if (r === null) return null;
  const problems: string[] = [];
  if (r.channel !== channel) problems.push(`rocket.channel is ${JSON.stringify(r.channel)}, not the entry's channel`);
  if (!isText(r.type)) problems.push("rocket.type is not a string");
  if (!isText(r.mission)) problems.push("rocket.mission is not a string");
  // An integer, as the domain keeps it: the summary sums speeds exactly (as BigInts).
  if (!Number.isSafeInteger(r.speed) || (r.speed as number) < 0) problems.push("rocket.speed is not a non-negative integer");
  if (!isStatus(r.status)) problems.push("rocket.status is neither launched nor exploded");
  if (r.explosionReason !== null && !isText(r.explosionReason)) problems.push("rocket.explosionReason is not a string or null");
  if (!isText(r.launchedAt)) problems.push("rocket.launchedAt is not a string");
  if (!isText(r.updatedAt)) problems.push("rocket.updatedAt is not a string");
  if (!Number.isSafeInteger(r.lastMessageNumber)) problems.push("rocket.lastMessageNumber is not an integer");
  if (problems.length > 0) throw new InvalidRocketStateError(problems.join("; "));
  return {
    channel,
    type: r.type as string,
    mission: r.mission as string,
    speed: r.speed as number,
    status: r.status as RocketStatus,
    explosionReason: r.explosionReason as string | null,
    launchedAt: r.launchedAt as string,
    updatedAt: r.updatedAt as string,
    lastMessageNumber: r.lastMessageNumber as number,
    // Inline (format 1) and parked in the stream (format 2); the parked count is an upper bound.
    pendingMessages: state.pending.length + (state.gap?.parked ?? 0),
    ...(state.gap === undefined ? {} : { gap: { since: state.gap.since } }),
    ...(state.skipped === undefined || state.skipped.length === 0 ? {} : { skipped: state.skipped }),
  };
}

export function sameRocketView(a: RocketView, b: RocketView): boolean {
  return (
    a.channel === b.channel &&
    a.type === b.type &&
    a.mission === b.mission &&
    a.speed === b.speed &&
    a.status === b.status &&
    a.explosionReason === b.explosionReason &&
    a.launchedAt === b.launchedAt &&
    a.updatedAt === b.updatedAt &&
    a.lastMessageNumber === b.lastMessageNumber &&
    a.pendingMessages === b.pendingMessages &&
    a.gap?.since === b.gap?.since &&
    JSON.stringify(a.skipped) === JSON.stringify(b.skipped)
  );
}
