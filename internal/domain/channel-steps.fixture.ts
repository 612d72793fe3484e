// Test fixtures for one channel's history, shared by the domain's tests: a
// fast-check arbitrary of the steps after a launch, the valid, in-order
// messages those steps make (the sequencer only ever sees valid ones), and a
// plain numbered message for tests that need only numbers. Times grow with the number, so "as of a time" questions have one
// answer. Never built: tsconfig.build.json leaves *.fixture.ts out.

import fc from "fast-check";
import { validateMessage, type RocketMessage } from "./message.js";

export type Step = { kind: "up" | "down"; by: number } | { kind: "mission"; mission: string } | { kind: "explode"; reason: string };

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("up" as const), by: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ kind: fc.constant("down" as const), by: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ kind: fc.constant("mission" as const), mission: fc.constantFrom("APOLLO", "GEMINI", "SKYLAB") }),
  fc.record({ kind: fc.constant("explode" as const), reason: fc.constantFrom("FROZEN_O_RINGS", "UNKNOWN") }),
);

/** The messageTime of message `n`: one second apart, increasing for an hour. */
export function stepTime(n: number): string {
  return `2025-04-02T09:${String(Math.floor(n / 60) % 60).padStart(2, "0")}:${String(n % 60).padStart(2, "0")}.5+02:00`;
}

export interface ChannelOptions {
  channel: string;
  launch: { type: string; launchSpeed: number; mission: string };
}

/** Message 1 launches the rocket; step i becomes message i + 2. */
export function channelMessages(steps: Step[], { channel, launch }: ChannelOptions): RocketMessage[] {
  const raw: unknown[] = [{ metadata: { channel, messageNumber: 1, messageTime: stepTime(1), messageType: "RocketLaunched" }, message: launch }];
  steps.forEach((s, i) => {
    const n = i + 2;
    const meta = (messageType: string) => ({ channel, messageNumber: n, messageTime: stepTime(n), messageType });
    if (s.kind === "up") raw.push({ metadata: meta("RocketSpeedIncreased"), message: { by: s.by } });
    if (s.kind === "down") raw.push({ metadata: meta("RocketSpeedDecreased"), message: { by: s.by } });
    if (s.kind === "mission") raw.push({ metadata: meta("RocketMissionChanged"), message: { newMission: s.mission } });
    if (s.kind === "explode") raw.push({ metadata: meta("RocketExploded"), message: { reason: s.reason } });
  });
  return raw.map((r) => {
    const v = validateMessage(r);
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    return v.value;
  });
}

/** Message `n` of `channel`: 1 launches a Falcon-9 at 500, any other speeds it up by `n`. Valid, as the sequencer sees them. */
export function numberedMessage(n: number, channel: string): RocketMessage {
  const metadata = { channel, messageNumber: n, messageTime: `2025-04-02T09:21:${String(n % 60).padStart(2, "0")}Z` };
  const raw =
    n === 1
      ? { metadata: { ...metadata, messageType: "RocketLaunched" }, message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } }
      : { metadata: { ...metadata, messageType: "RocketSpeedIncreased" }, message: { by: n } };
  const v = validateMessage(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.value;
}
