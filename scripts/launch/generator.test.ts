import { describe, expect, it } from "vitest";
import { apply, isRfc3339, MessageType, validateMessage, type Rocket, type RocketMessage } from "../../internal/domain/mod.js";
import { EXPLOSION_REASONS, expectedStates, generateTraffic, MIN_SPEED, MISSIONS, planLaunch, ROCKET_TYPES, sendOrder } from "./generator.js";

const nanos = (t: string): bigint => {
  const m = /^(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t)!;
  const ms = BigInt(Date.parse(`${m[1]}${m[3]}`));
  return ms * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
};

function byChannel(messages: readonly RocketMessage[]): Map<string, RocketMessage[]> {
  const map = new Map<string, RocketMessage[]>();
  for (const m of messages) map.set(m.metadata.channel, [...(map.get(m.metadata.channel) ?? []), m]);
  return map;
}

describe("generateTraffic", () => {
  const traffic = generateTraffic({ seed: 444, maxMessages: 8_000, rockets: 50 });

  it("is a function of the seed", () => {
    expect(JSON.stringify(generateTraffic({ seed: 444, maxMessages: 8_000, rockets: 50 }))).toBe(JSON.stringify(traffic));
    const other = generateTraffic({ seed: 445, maxMessages: 8_000, rockets: 50 });
    expect(other[0]!.metadata.channel).not.toBe(traffic[0]!.metadata.channel);
  });

  it("sends exactly max-messages distinct messages over the requested rockets", () => {
    expect(traffic).toHaveLength(8_000);
    expect(byChannel(traffic).size).toBe(50);
    const ids = new Set(traffic.map((m) => `${m.metadata.channel}:${m.metadata.messageNumber}`));
    expect(ids.size).toBe(8_000);
  });

  it("produces only messages the service accepts, unchanged by validation", () => {
    const changed = traffic.filter((m) => {
      const v = validateMessage(JSON.parse(JSON.stringify(m)));
      return !v.ok || JSON.stringify(v.value) !== JSON.stringify(m);
    });
    expect(changed).toEqual([]);
  });

  it("numbers each rocket from 1 with no gaps, launched first, nothing after an explosion", () => {
    for (const [channel, list] of byChannel(traffic)) {
      expect(list.map((m) => m.metadata.messageNumber), channel).toEqual(list.map((_, i) => i + 1));
      expect(list[0]!.metadata.messageType).toBe(MessageType.RocketLaunched);
      expect(list.slice(1).every((m) => m.metadata.messageType !== MessageType.RocketLaunched)).toBe(true);
      const explosion = list.findIndex((m) => m.metadata.messageType === MessageType.RocketExploded);
      expect(explosion === -1 || explosion === list.length - 1).toBe(true);
    }
  });

  it("keeps speed at or above 500 and uses the known types, missions and reasons", () => {
    const odd: Rocket[] = [];
    for (const list of byChannel(traffic).values()) {
      let rocket: Rocket | null = null;
      for (const m of list) {
        rocket = apply(rocket, m);
        const known =
          rocket.speed >= MIN_SPEED &&
          (ROCKET_TYPES as readonly string[]).includes(rocket.type) &&
          (MISSIONS as readonly string[]).includes(rocket.mission) &&
          (rocket.explosionReason === null || (EXPLOSION_REASONS as readonly string[]).includes(rocket.explosionReason));
        if (!known) odd.push(rocket);
      }
    }
    expect(odd).toEqual([]);
  });

  it("gives each rocket RFC 3339 times with nanoseconds that increase", () => {
    let withNanos = 0;
    const bad: string[] = [];
    for (const list of byChannel(traffic).values()) {
      let previous = -1n;
      for (const m of list) {
        const t = nanos(m.metadata.messageTime);
        if (!isRfc3339(m.metadata.messageTime) || t <= previous) bad.push(m.metadata.messageTime);
        if (/\.\d{9}/.test(m.metadata.messageTime)) withNanos += 1;
        previous = t;
      }
    }
    expect(bad).toEqual([]);
    expect(withNanos).toBeGreaterThan(traffic.length / 2);
  });

  it("has some rockets explode and others fly on, with a mix of every message type", () => {
    const states = [...expectedStates(traffic).values()];
    const exploded = states.filter((r) => r.status === "exploded").length;
    expect(exploded).toBeGreaterThan(0);
    expect(exploded).toBeLessThan(states.length);
    const types = new Set(traffic.map((m) => m.metadata.messageType));
    expect(types.size).toBe(5);
  });

  it("spreads the default profile as the test program does: 100k messages over 20 rockets, none over ~6,500", () => {
    const full = generateTraffic({ seed: 444, maxMessages: 100_000, rockets: 20 });
    const counts = [...byChannel(full).values()].map((l) => l.length);
    expect(counts).toHaveLength(20);
    expect(Math.max(...counts)).toBeLessThanOrEqual(6_600);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(3_400);
  });

  it("never has more rockets than messages", () => {
    expect(byChannel(generateTraffic({ seed: 1, maxMessages: 3, rockets: 20 })).size).toBe(3);
  });
});

describe("expectedStates", () => {
  it("is each rocket's messages applied in number order, whatever order they come in", () => {
    const traffic = generateTraffic({ seed: 9, maxMessages: 2_000, rockets: 10 });
    const expected = expectedStates(traffic);
    const shuffled = expectedStates(sendOrder(traffic, { seed: 3, duplicateRate: 0.3, reorderWindow: 500 }));
    expect(shuffled).toEqual(expected);
    for (const [channel, list] of byChannel(traffic)) {
      const rocket = expected.get(channel)!;
      expect(rocket.lastMessageNumber).toBe(list.length);
      expect(rocket.updatedAt).toBe(list[list.length - 1]!.metadata.messageTime);
      expect(rocket.launchedAt).toBe(list[0]!.metadata.messageTime);
    }
  });
});

describe("sendOrder", () => {
  const traffic = generateTraffic({ seed: 5, maxMessages: 5_000, rockets: 30 });

  it("keeps the order when asked for no duplicates and no reordering", () => {
    expect(sendOrder(traffic, { seed: 5, duplicateRate: 0, reorderWindow: 0 })).toEqual(traffic);
  });

  it("moves no message further than the reorder window, and does move some", () => {
    const order = sendOrder(traffic, { seed: 5, duplicateRate: 0, reorderWindow: 50 });
    expect(order).toHaveLength(traffic.length);
    const position = new Map(order.map((m, i) => [m, i]));
    let moved = 0;
    let furthest = 0;
    traffic.forEach((m, i) => {
      const shift = Math.abs(position.get(m)! - i);
      furthest = Math.max(furthest, shift);
      if (shift > 0) moved += 1;
    });
    expect(furthest).toBeLessThanOrEqual(50);
    expect(moved).toBeGreaterThan(traffic.length / 2);
  });

  it("sends every message at least once and about duplicate-rate of them twice", () => {
    const order = sendOrder(traffic, { seed: 5, duplicateRate: 0.1, reorderWindow: 20 });
    const counts = new Map<RocketMessage, number>();
    for (const m of order) counts.set(m, (counts.get(m) ?? 0) + 1);
    expect(counts.size).toBe(traffic.length);
    const twice = [...counts.values()].filter((n) => n === 2).length;
    expect([...counts.values()].every((n) => n === 1 || n === 2)).toBe(true);
    expect(twice).toBeGreaterThan(400);
    expect(twice).toBeLessThan(600);
  });

  it("is a function of the seed", () => {
    const options = { seed: 5, duplicateRate: 0.1, reorderWindow: 20 };
    expect(sendOrder(traffic, options)).toEqual(sendOrder(traffic, options));
  });
});

describe("planLaunch", () => {
  it("keeps the same rockets whatever the duplicate rate and reorder window", () => {
    const base = { seed: 444, maxMessages: 3_000, rockets: 20 };
    const plain = planLaunch({ ...base, duplicateRate: 0, reorderWindow: 0 });
    const noisy = planLaunch({ ...base, duplicateRate: 0.2, reorderWindow: 300 });
    expect(noisy.expected).toEqual(plain.expected);
    expect(noisy.messages).toBe(3_000);
    expect(noisy.duplicates).toBe(noisy.sends.length - 3_000);
    expect(noisy.duplicates).toBeGreaterThan(0);
  });
});
