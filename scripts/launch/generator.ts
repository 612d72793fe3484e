// Deterministic, realistic rocket traffic from a seed, like the operators'
// test program: every rocket starts with RocketLaunched as number 1, numbers
// have no gaps, speed never drops below 500, an exploded rocket sends nothing
// more, message times are RFC 3339 with nanoseconds and increase per rocket.
//
// Three pure steps: generate the messages (in the order the rockets produce
// them), derive the expected final state of each rocket with the domain's
// apply(), and derive the send order (local reordering and duplicates). Each
// step draws from its own random stream, so the duplicate rate or the reorder
// window never change the rockets themselves.

import { apply, MessageType, type MessageOf, type Rocket, type RocketMessage } from "../../internal/domain/mod.js";
import { formatMessageTime } from "./message-time.js";
import { Random } from "./random.js";

export const ROCKET_TYPES = ["Falcon-9", "Atlas-H", "Titan-IV", "New-Shepard"] as const;
export const MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "MERCURY", "SKYLAB", "SHUTTLE_MIR", "APOLLO_SOYUZ"] as const;
export const EXPLOSION_REASONS = [
  "PRESSURE_VESSEL_FAILURE",
  "FROZEN_O_RINGS",
  "UNKNOWN_OBJECT_COLLISION",
  "SYSTEM_MALFUNCTION",
] as const;
export const MIN_SPEED = 500;

/** Share of rockets whose last message is RocketExploded. */
const EXPLODING_SHARE = 0.3;
/** UTC offsets (minutes) the senders' clocks use. */
const OFFSETS = [0, 60, 120, -240, -300, 330, 540];
const MAX_STEP = 3000;

export interface TrafficOptions {
  seed: number;
  /** Distinct messages over all rockets. */
  maxMessages: number;
  rockets: number;
}

export interface SendOrderOptions {
  seed: number;
  /** Probability that a message is sent twice. */
  duplicateRate: number;
  /** How many positions a message may move from where its rocket produced it. */
  reorderWindow: number;
}

export interface LaunchPlan {
  /** Every POST to make, in order; duplicates included. */
  sends: RocketMessage[];
  /** Distinct messages. */
  messages: number;
  duplicates: number;
  /** The state each rocket must end in, by channel. */
  expected: Map<string, Rocket>;
}

interface RocketDraft {
  channel: string;
  type: string;
  mission: string;
  speed: number;
  offsetMinutes: number;
  /** How many messages this rocket sends in total. */
  count: number;
  explodes: boolean;
  sent: number;
}

/** Splits `total` messages over `rockets` rockets, each at least one, roughly even (+-30%). */
function messageCounts(random: Random, total: number, rockets: number): number[] {
  const weights = Array.from({ length: rockets }, () => 0.7 + random.float() * 0.6);
  const sum = weights.reduce((a, b) => a + b, 0);
  const spare = total - rockets;
  const counts = weights.map((w) => 1 + Math.floor((spare * w) / sum));
  let missing = total - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; missing > 0; i = (i + 1) % rockets, missing--) counts[i]! += 1;
  return counts;
}

function nextMessage(random: Random, r: RocketDraft, time: string): RocketMessage {
  r.sent += 1;
  const metadata = <T extends MessageType>(messageType: T) => ({
    channel: r.channel,
    messageNumber: r.sent,
    messageTime: time,
    messageType,
  });
  if (r.sent === 1) {
    return {
      metadata: metadata(MessageType.RocketLaunched),
      message: { type: r.type, launchSpeed: r.speed, mission: r.mission },
    } satisfies MessageOf<"RocketLaunched">;
  }
  if (r.sent === r.count && r.explodes) {
    return {
      metadata: metadata(MessageType.RocketExploded),
      message: { reason: random.pick(EXPLOSION_REASONS) },
    } satisfies MessageOf<"RocketExploded">;
  }
  const roll = random.float();
  if (roll < 0.15) {
    const others = MISSIONS.filter((m) => m !== r.mission);
    r.mission = random.pick(others);
    return {
      metadata: metadata(MessageType.RocketMissionChanged),
      message: { newMission: r.mission },
    } satisfies MessageOf<"RocketMissionChanged">;
  }
  const headroom = r.speed - MIN_SPEED;
  if (roll < 0.575 && headroom > 0) {
    const by = random.int(1, Math.min(MAX_STEP, headroom));
    r.speed -= by;
    return { metadata: metadata(MessageType.RocketSpeedDecreased), message: { by } } satisfies MessageOf<"RocketSpeedDecreased">;
  }
  const by = random.int(1, MAX_STEP);
  r.speed += by;
  return { metadata: metadata(MessageType.RocketSpeedIncreased), message: { by } } satisfies MessageOf<"RocketSpeedIncreased">;
}

/** Every message of every rocket, interleaved in the order the rockets produce them. */
export function generateTraffic(options: TrafficOptions): RocketMessage[] {
  const random = new Random(options.seed, "traffic");
  const rocketCount = Math.max(1, Math.min(options.rockets, options.maxMessages));
  const counts = messageCounts(random, options.maxMessages, rocketCount);
  const rockets: RocketDraft[] = counts.map((count) => ({
    channel: random.uuid(),
    type: random.pick(ROCKET_TYPES),
    mission: random.pick(MISSIONS),
    speed: MIN_SPEED + random.int(0, 20) * 100,
    offsetMinutes: random.pick(OFFSETS),
    count,
    explodes: count > 1 && random.chance(EXPLODING_SHARE),
    sent: 0,
  }));
  // A uniformly random interleaving: each rocket's index appears once per message it sends.
  const slots: number[] = [];
  counts.forEach((count, i) => {
    for (let k = 0; k < count; k++) slots.push(i);
  });
  random.shuffle(slots);

  // One clock for the whole launch, a few milliseconds (with nanosecond noise) per message.
  let clock = BigInt(Date.UTC(2025, 0, 1) + random.int(0, 364) * 86_400_000) * 1_000_000n;
  return slots.map((i) => {
    clock += BigInt(random.int(1, 5_000_000));
    const rocket = rockets[i]!;
    return nextMessage(random, rocket, formatMessageTime(clock, rocket.offsetMinutes));
  });
}

/** The state every rocket ends in once its messages are applied in number order, each once. */
export function expectedStates(messages: readonly RocketMessage[]): Map<string, Rocket> {
  const byChannel = new Map<string, Map<number, RocketMessage>>();
  for (const m of messages) {
    const list = byChannel.get(m.metadata.channel) ?? new Map<number, RocketMessage>();
    list.set(m.metadata.messageNumber, m);
    byChannel.set(m.metadata.channel, list);
  }
  const expected = new Map<string, Rocket>();
  for (const [channel, numbered] of byChannel) {
    const list = [...numbered.values()].sort((a, b) => a.metadata.messageNumber - b.metadata.messageNumber);
    expected.set(channel, list.reduce<Rocket | null>((rocket, m) => apply(rocket, m), null)!);
  }
  return expected;
}

/**
 * The order to POST in: each message moved by up to `reorderWindow` positions,
 * and with probability `duplicateRate` sent a second time somewhat later (as a
 * client's retry would).
 */
export function sendOrder(messages: readonly RocketMessage[], options: SendOrderOptions): RocketMessage[] {
  if (options.duplicateRate === 0 && options.reorderWindow === 0) return [...messages];
  const random = new Random(options.seed, "send-order");
  const spread = Math.max(2 * options.reorderWindow, 100);
  const keyed: { key: number; message: RocketMessage }[] = [];
  messages.forEach((message, i) => {
    keyed.push({ key: i + random.float() * options.reorderWindow, message });
    if (options.duplicateRate > 0 && random.chance(options.duplicateRate)) {
      keyed.push({ key: i + random.float() * spread, message });
    }
  });
  keyed.sort((a, b) => a.key - b.key);
  return keyed.map((k) => k.message);
}

export function planLaunch(options: TrafficOptions & SendOrderOptions): LaunchPlan {
  const messages = generateTraffic(options);
  const sends = sendOrder(messages, options);
  return {
    sends,
    messages: messages.length,
    duplicates: sends.length - messages.length,
    expected: expectedStates(messages),
  };
}
