// The synthetic fleet bench:api serves: deterministic channels and rockets
// with the value spread of the test program (a few types and missions, speeds
// in the hundreds to thousands, some exploded).

import type { Rocket } from "../internal/domain/rocket.js";

const TYPES = ["Falcon-9", "Atlas-H", "Titan-IV", "New-Shepard"];
const MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "MERCURY", "SKYLAB", "SHUTTLE_MIR", "APOLLO_SOYUZ"];
const REASONS = ["PRESSURE_VESSEL_FAILURE", "FROZEN_O_RINGS", "UNKNOWN_OBJECT_COLLISION", "SYSTEM_MALFUNCTION"];

/** A UUID-shaped channel id for rocket i; the scrambled prefix keeps channel order unrelated to i. */
export function benchChannel(i: number): string {
  const scrambled = (Math.imul(i + 1, 2654435761) >>> 0).toString(16).padStart(8, "0");
  return `${scrambled}-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
}

/** A small deterministic PRNG (mulberry32), so every run serves the same fleet. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, values: readonly T[]): T => values[Math.floor(rnd() * values.length)]!;

function time(rnd: () => number): string {
  const ms = Date.UTC(2025, 3, 2) + Math.floor(rnd() * 86_400_000);
  const ns = String(Math.floor(rnd() * 1e9)).padStart(9, "0");
  return `${new Date(ms).toISOString().slice(0, 19)}.${ns}+00:00`;
}

export function benchRocket(i: number, rnd: () => number): Rocket {
  const exploded = rnd() < 0.2;
  return {
    channel: benchChannel(i),
    type: pick(rnd, TYPES),
    mission: pick(rnd, MISSIONS),
    speed: 500 + Math.floor(rnd() * 5000),
    status: exploded ? "exploded" : "launched",
    explosionReason: exploded ? pick(rnd, REASONS) : null,
    launchedAt: time(rnd),
    updatedAt: time(rnd),
    lastMessageNumber: 1 + Math.floor(rnd() * 6500),
  };
}

/** The rocket after one more message: a speed change, sometimes a mission change. */
export function nextRocket(r: Rocket, rnd: () => number, updatedAt: string): Rocket {
  const next = { ...r, updatedAt, lastMessageNumber: r.lastMessageNumber + 1 };
  if (r.status === "exploded") return next;
  if (rnd() < 0.05) next.mission = pick(rnd, MISSIONS);
  else next.speed = Math.max(0, r.speed + Math.floor(rnd() * 200) - 100);
  return next;
}
