// Test and benchmark traffic for the sequencer: valid rocket messages per
// channel, in order, then shuffled and duplicated the way the stream can
// hold them; plus the state each channel must end in, computed by applying
// the messages in order with the domain's apply().

import { apply, type Rocket } from "../domain/rocket.js";
import { validateMessage, type RocketMessage } from "../domain/message.js";
import { partitionOf } from "../domain/partition.js";
import { eventSubject } from "../nats/topology.js";

/** mulberry32: small, fast, and deterministic from a seed. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }
}

export function channelId(seed: number, index: number): string {
  const hex = (n: number, width: number) => (n >>> 0).toString(16).padStart(width, "0").slice(-width);
  return `${hex(seed, 8)}-${hex(index >>> 16, 4)}-4${hex(index, 3)}-8000-${hex(index * 2654435761, 12)}`;
}

function messageTime(n: number): string {
  const seconds = 1_700_000_000 + n;
  return new Date(seconds * 1000).toISOString().replace(".000Z", `.${String(n % 1e9).padStart(9, "0")}+00:00`);
}

/** `count` valid messages of one rocket, numbers 1..count in order; some rockets explode last. */
export function rocketMessages(channel: string, count: number, rng: Rng): RocketMessage[] {
  const explodes = rng.next() < 0.3;
  const raw: unknown[] = [];
  for (let n = 1; n <= count; n += 1) {
    const metadata = (messageType: string) => ({ channel, messageNumber: n, messageTime: messageTime(n), messageType });
    if (n === 1) {
      raw.push({ metadata: metadata("RocketLaunched"), message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } });
    } else if (n === count && explodes) {
      raw.push({ metadata: metadata("RocketExploded"), message: { reason: "FROZEN_O_RINGS" } });
    } else {
      const pick = rng.int(10);
      if (pick < 6) raw.push({ metadata: metadata("RocketSpeedIncreased"), message: { by: 1 + rng.int(3000) } });
      else if (pick < 9) raw.push({ metadata: metadata("RocketSpeedDecreased"), message: { by: 1 + rng.int(3000) } });
      else raw.push({ metadata: metadata("RocketMissionChanged"), message: { newMission: rng.next() < 0.5 ? "APOLLO" : "GEMINI" } });
    }
  }
  return raw.map((r) => {
    const v = validateMessage(r);
    if (!v.ok) throw new Error(`generated an invalid message: ${JSON.stringify(v.problems)}`);
    return v.value;
  });
}

export interface Traffic {
  /** Every channel's messages in order. */
  byChannel: Map<string, RocketMessage[]>;
  /** The state each channel must end in. */
  expected: Map<string, Rocket>;
}

export function makeTraffic(options: { channels: number; perChannel: number; seed: number }): Traffic {
  const rng = new Rng(options.seed);
  const byChannel = new Map<string, RocketMessage[]>();
  const expected = new Map<string, Rocket>();
  for (let i = 0; i < options.channels; i += 1) {
    const channel = channelId(options.seed, i);
    const messages = rocketMessages(channel, options.perChannel, rng);
    byChannel.set(channel, messages);
    expected.set(channel, messages.reduce<Rocket | null>((rocket, m) => apply(rocket, m), null)!);
  }
  return { byChannel, expected };
}

/** Fisher-Yates, in place. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Every message once plus a copy of `rate` of them, all shuffled together. */
export function shuffledWithDuplicates(traffic: Traffic, rate: number, seed: number): RocketMessage[] {
  const rng = new Rng(seed);
  const all = [...traffic.byChannel.values()].flat();
  const copies = all.filter(() => rng.next() < rate);
  return shuffle([...all, ...copies], rng);
}

export function subjectOf(message: RocketMessage, partitions: number): string {
  const channel = message.metadata.channel;
  return eventSubject(partitionOf(channel, partitions), channel);
}
