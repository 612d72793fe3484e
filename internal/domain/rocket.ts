// A rocket's state and how one message changes it.
//
// `apply` is only ever called in messageNumber order (sequencing guarantees
// it), so it does not look at numbers beyond recording the last one.

import { MessageType, type RocketMessage } from "./message.js";

export const RocketStatus = { Launched: "launched", Exploded: "exploded" } as const;
export type RocketStatus = (typeof RocketStatus)[keyof typeof RocketStatus];

export interface Rocket {
  channel: string;
  type: string;
  mission: string;
  speed: number;
  status: RocketStatus;
  explosionReason: string | null;
  /** messageTime of the RocketLaunched message, verbatim. */
  launchedAt: string;
  /** messageTime of the last applied message, verbatim. */
  updatedAt: string;
  lastMessageNumber: number;
}

/** Raised when a caller breaks apply's precondition; a bug, never an input error. */
export class SequenceInvariantError extends Error {
  override name = "SequenceInvariantError";
}

/**
 * Applies one in-order message. Semantics worth stating:
 * - speed never goes below 0 (a decrease larger than the speed stops the rocket),
 *   and never above Number.MAX_SAFE_INTEGER (it saturates there), so it is
 *   always exact: each change is at most MAX_SPEED, so the sum is exact up to
 *   the ceiling, and one past it rounds to a number above it;
 * - an exploded rocket is terminal: later messages still advance
 *   lastMessageNumber and updatedAt, but change neither speed nor mission.
 */
export function apply(rocket: Rocket | null, msg: RocketMessage): Rocket {
  const { metadata } = msg;
  if (msg.metadata.messageType === MessageType.RocketLaunched) {
    if (rocket) {
      throw new SequenceInvariantError(`rocket ${metadata.channel} launched twice`);
    }
    const m = (msg as Extract<RocketMessage, { message: { launchSpeed: number } }>).message;
    return {
      channel: metadata.channel,
      type: m.type,
      mission: m.mission,
      speed: m.launchSpeed,
      status: RocketStatus.Launched,
      explosionReason: null,
      launchedAt: metadata.messageTime,
      updatedAt: metadata.messageTime,
      lastMessageNumber: metadata.messageNumber,
    };
  }
  if (!rocket) {
    throw new SequenceInvariantError(
      `message ${metadata.messageNumber} of ${metadata.channel} applied before its launch`,
    );
  }
  const next: Rocket = { ...rocket, updatedAt: metadata.messageTime, lastMessageNumber: metadata.messageNumber };
  if (rocket.status === RocketStatus.Exploded) return next;
  switch (msg.metadata.messageType) {
    case MessageType.RocketSpeedIncreased:
      next.speed = Math.min(Number.MAX_SAFE_INTEGER, rocket.speed + (msg.message as { by: number }).by);
      break;
    case MessageType.RocketSpeedDecreased:
      next.speed = Math.max(0, rocket.speed - (msg.message as { by: number }).by);
      break;
    case MessageType.RocketMissionChanged:
      next.mission = (msg.message as { newMission: string }).newMission;
      break;
    case MessageType.RocketExploded:
      next.status = RocketStatus.Exploded;
      next.explosionReason = (msg.message as { reason: string }).reason;
      break;
  }
  return next;
}
