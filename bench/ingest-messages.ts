// Benchmark payloads: realistic rocket messages (~250 bytes, the shapes of
// FACTS.md), every one unique (its own channel/messageNumber), so that the
// stream's dedup never turns a publish into a cheap duplicate.

import { randomUUID } from "node:crypto";

const MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "MERCURY", "SKYLAB"];
const ROCKETS_PER_SET = 1000;

export interface MessageSet {
  /** The i-th message of this set; distinct i give distinct message ids. */
  message(i: number): object;
}

export function messageSet(): MessageSet {
  const channels = Array.from({ length: ROCKETS_PER_SET }, () => randomUUID());
  return {
    message(i) {
      const channel = channels[i % ROCKETS_PER_SET]!;
      const messageNumber = Math.floor(i / ROCKETS_PER_SET) + 1;
      const metadata = (messageType: string) => ({
        channel,
        messageNumber,
        messageTime: "2025-04-02T09:21:50.458989221+02:00",
        messageType,
      });
      if (messageNumber === 1) {
        return { metadata: metadata("RocketLaunched"), message: { type: "Falcon-9", launchSpeed: 500, mission: "ARTEMIS" } };
      }
      if (messageNumber % 10 === 0) {
        return { metadata: metadata("RocketMissionChanged"), message: { newMission: MISSIONS[messageNumber % MISSIONS.length] } };
      }
      return { metadata: metadata(messageNumber % 2 ? "RocketSpeedIncreased" : "RocketSpeedDecreased"), message: { by: 100 + (i % 900) } };
    },
  };
}
