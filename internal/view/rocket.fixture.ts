// A launched rocket as the view holds it, for tests and benchmarks: every
// field set to a plausible default, any of them overridable.

import type { RocketView } from "./rocket-view.js";

export function rocketFixture(channel: string, fields: Partial<RocketView> = {}): RocketView {
  return {
    channel,
    type: "Falcon-9",
    mission: "ARTEMIS",
    speed: 500,
    status: "launched",
    explosionReason: null,
    launchedAt: "2022-02-02T19:39:05.86337+01:00",
    updatedAt: "2022-02-02T19:39:05.86337+01:00",
    lastMessageNumber: 1,
    pendingMessages: 0,
    ...fields,
  };
}
