// The simulated network of the in-memory adapters (memory-channel-states.ts,
// memory-event-stream.ts): every call resolves after a timer of
// `latencyMs`, so concurrent calls interleave and complete in the order they
// were made, as over one connection, and a test on vitest's fake timers
// decides when they land (vi.advanceTimersByTimeAsync cuts work part-way,
// vi.runAllTimersAsync settles everything).

/** Each in-memory call's simulated round trip. */
export const DEFAULT_LATENCY_MS = 1;

export function roundTrip(latencyMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, latencyMs));
}
