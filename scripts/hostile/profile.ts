// How big each attack is and how the system under attack is configured. The
// full profile (`npm run hostile`) uses the figures of issue 14; the short
// one (test/hostile.test.ts, inside `npm test`) keeps every attack's shape at
// a size that runs in seconds: where an attack only bites past a limit (a
// gap overflowing a channel's buffer and the partition's ack window, stalled
// requests outliving the request timeout, a flood past the rate limit), the
// short system gets that limit scaled down with it, said in `env`.

export interface Profile {
  name: "full" | "short";
  /** Environment of every service (on top of the test harness's own). */
  env: Record<string, string>;
  partitions: number;
  /** Legit rockets per partition. */
  legitPerPartition: number;
  /** Pause between one legit rocket's messages. */
  periodMs: number;
  /** A legit message not visible through the API this long after its 2xx is a timeout. */
  visibleTimeoutMs: number;
  pollMs: number;
  /** How long an attack keeps going (or its effects are watched) while legit rockets post. */
  holdMs: number;
  /** Wait for the legit rockets' last messages before judging them exact. */
  verifyTimeoutMs: number;
  /** Longest the wait for the previous attacks' backlog to drain before the next one. */
  drainTimeoutMs: number;
  /** Longest an attack's setup (loading data) may take. */
  setupTimeoutMs: number;
  gapMessages: number;
  unlaunchedChannels: number;
  stalledConnections: number;
  stalledUploads: number;
  stallHoldMs: number;
  requestTimeoutMs: number;
  floodConcurrency: number;
  rateLimitMax: number;
  rateLimitWindowSeconds: number;
  summaryRockets: number;
  summaryParallel: number;
  sseStreams: number;
  sseMaxPerClient: number;
}

/**
 * The sequencer's own defaults, over the whole-system harness's fast-failover
 * timings (test/rockets-system.ts): under a burst a 3 s ack wait has the
 * stream redeliver whatever is not acked yet, which measures the harness,
 * not the system as deployed.
 */
const DEFAULT_TIMINGS = { ACK_WAIT_MS: "30000", LEASE_TTL_MS: "5000", HEARTBEAT_MS: "1000", RETRY_DELAY_MS: "1000" };

/** Legit update latency bound (p99), from issue 14. */
export const LEGIT_P99_BOUND_MS = 1000;

export const FULL: Profile = {
  name: "full",
  // The rate limit's default (300,000 per 10 s) is beyond what one loopback client can send here: lowered so the flood meets it.
  env: { ...DEFAULT_TIMINGS, PARTITIONS: "16", RATE_LIMIT_MAX: "3000", RATE_LIMIT_WINDOW_SECONDS: "10" },
  partitions: 16,
  legitPerPartition: 1,
  periodMs: 250,
  visibleTimeoutMs: 5000,
  pollMs: 25,
  holdMs: 8000,
  verifyTimeoutMs: 10_000,
  setupTimeoutMs: 180_000,
  drainTimeoutMs: 60_000,
  gapMessages: 13_000,
  unlaunchedChannels: 40_000,
  stalledConnections: 1000,
  stalledUploads: 300,
  stallHoldMs: 20_000,
  requestTimeoutMs: 15_000,
  floodConcurrency: 32,
  rateLimitMax: 3000,
  rateLimitWindowSeconds: 10,
  summaryRockets: 50_000,
  summaryParallel: 40,
  sseStreams: 300,
  sseMaxPerClient: 32,
};

export const SHORT: Profile = {
  name: "short",
  env: {
    ...DEFAULT_TIMINGS,
    PARTITIONS: "4",
    RATE_LIMIT_MAX: "300",
    RATE_LIMIT_WINDOW_SECONDS: "10",
    // A 1,300-message gap overflows these as 13,000 overflow the defaults (buffer ~5,350, ack window 5,000).
    MAX_PENDING_PER_CHANNEL: "200",
    MAX_ACK_PENDING: "500",
    HTTP_REQUEST_TIMEOUT_MS: "2000",
  },
  partitions: 4,
  legitPerPartition: 1,
  periodMs: 200,
  visibleTimeoutMs: 2500,
  pollMs: 25,
  holdMs: 1500,
  verifyTimeoutMs: 3000,
  setupTimeoutMs: 30_000,
  drainTimeoutMs: 10_000,
  gapMessages: 1300,
  // 250 per partition against an ack window of 500: the ratio of 40,000 over 16 partitions against 5,000.
  unlaunchedChannels: 1000,
  stalledConnections: 200,
  stalledUploads: 20,
  // Past the 2 s request timeout, its once-a-second check and the time to open them all: the check that ingest cut every one is real.
  stallHoldMs: 4500,
  requestTimeoutMs: 2000,
  floodConcurrency: 8,
  rateLimitMax: 300,
  rateLimitWindowSeconds: 10,
  summaryRockets: 2000,
  summaryParallel: 40,
  sseStreams: 40,
  sseMaxPerClient: 32,
};
