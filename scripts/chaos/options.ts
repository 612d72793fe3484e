// What a chaos run is sized by, its defaults (the scenario of issue 10 in
// about two minutes on a 2-core machine) and its command line. Flags are
// `--name=value` or `--name value`, durations as Go durations like the load
// program's (`500ms`, `40s`, `5m`). Parsing returns every problem at once.

import { parseDuration } from "../launch/flags.js";

export interface ChaosOptions {
  /** Partition count of the deployment (recorded once in NATS). */
  partitions: number;
  /** How long faults are injected, from the start of the load; the load runs until the last one strikes. */
  faultWindowMs: number;
  /** A sequencer is SIGKILLed (and restarted) this often during the window. */
  sequencerKillEveryMs: number;
  /** Times the node leading the events stream is SIGKILLed and restarted on its store. */
  leaderKills: number;
  /** Times an ingest is SIGKILLed and restarted. */
  ingestKills: number;
  /** Times a sequencer is SIGSTOPped past its lease, then SIGCONTed. */
  pauses: number;
  /** Distinct messages each ingest gets per load round (each round is one run of the load program). */
  messagesPerRound: number;
  rocketsPerRound: number;
  /** Requests in flight per ingest. */
  concurrency: number;
  duplicateRate: number;
  reorderWindow: number;
  seed: number;
  /** Hard limit on the whole run, start-up and teardown included. */
  deadlineMs: number;
  /** The run fails when it settles later than this after the last fault was injected. */
  settleGoalMs: number;
  /** Stop waiting for the system to settle after this long (then it fails with what is still off). */
  settleTimeoutMs: number;
  /**
   * Fail unless, with every process back, the sequencers' shares of the
   * partitions end within one of each other. Off by default: the balance is
   * always reported, and becomes a pass condition once ownership guarantees it.
   */
  requireBalance: boolean;
  /** Where every process's whole log is written; a new directory under .tmp/chaos when unset. */
  logsDir: string | undefined;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  partitions: 16,
  faultWindowMs: 40_000,
  sequencerKillEveryMs: 5_000,
  leaderKills: 2,
  ingestKills: 1,
  pauses: 1,
  // Small rounds: the round under way when the last fault strikes is the load's tail.
  messagesPerRound: 300,
  rocketsPerRound: 15,
  concurrency: 8,
  duplicateRate: 0.05,
  reorderWindow: 50,
  seed: 1010,
  deadlineMs: 300_000,
  settleGoalMs: 5_000,
  settleTimeoutMs: 60_000,
  requireBalance: true,
  logsDir: undefined,
};

export const CHAOS_USAGE = `usage: npm run chaos [-- flags]

Runs Rockets on a 3-node NATS JetStream cluster (R3; 2 ingest, 3 sequencers,
2 APIs), loads both ingests with duplicated, reordered messages, injects
faults, then verifies the outcome through both APIs and NATS itself.
Prints one summary line; exits 0 only when everything verified.

  --fault-window duration        how long faults are injected (default 40s)
  --sequencer-kill-every duration  SIGKILL a sequencer this often (default 5s)
  --leader-kills int             SIGKILL the events stream's leader node (default 2)
  --ingest-kills int             SIGKILL an ingest (default 1)
  --pauses int                   SIGSTOP a sequencer past its lease (default 1)
  --partitions int               partition count (default 16)
  --messages-per-round int       distinct messages per ingest per round (default 300)
  --rockets-per-round int        rockets per ingest per round (default 15)
  --concurrency int              requests in flight per ingest (default 8)
  --duplicate-rate float         share of messages sent twice (default 0.05)
  --reorder-window int           positions a message may move (default 50)
  --seed int                     seed of the first round (default 1010)
  --deadline duration            hard limit on the whole run (default 5m0s)
  --settle-goal duration         fail when settling takes longer (default 5s)
  --settle-timeout duration      stop waiting for the system to settle (default 1m0s)
  --require-balance[=false]      fail unless the sequencers' shares end within one (default on)
  --logs dir                     write every process's log there (default .tmp/chaos/<time>)
`;

type Kind = "duration" | "int" | "float" | "path" | "bool";
interface FlagSpec {
  key: keyof ChaosOptions;
  kind: Kind;
  min?: number;
  max?: number;
}

const FLAGS: Record<string, FlagSpec> = {
  "fault-window": { key: "faultWindowMs", kind: "duration", min: 1000 },
  "sequencer-kill-every": { key: "sequencerKillEveryMs", kind: "duration", min: 1000 },
  "leader-kills": { key: "leaderKills", kind: "int", min: 0, max: 100 },
  "ingest-kills": { key: "ingestKills", kind: "int", min: 0, max: 100 },
  pauses: { key: "pauses", kind: "int", min: 0, max: 100 },
  partitions: { key: "partitions", kind: "int", min: 1, max: 1024 },
  "messages-per-round": { key: "messagesPerRound", kind: "int", min: 1, max: 10_000_000 },
  "rockets-per-round": { key: "rocketsPerRound", kind: "int", min: 1, max: 1_000_000 },
  concurrency: { key: "concurrency", kind: "int", min: 1, max: 1000 },
  "duplicate-rate": { key: "duplicateRate", kind: "float", min: 0, max: 1 },
  "reorder-window": { key: "reorderWindow", kind: "int", min: 0, max: 1_000_000 },
  seed: { key: "seed", kind: "int", min: 0, max: 2 ** 31 },
  deadline: { key: "deadlineMs", kind: "duration", min: 10_000 },
  "settle-goal": { key: "settleGoalMs", kind: "duration", min: 0 },
  "settle-timeout": { key: "settleTimeoutMs", kind: "duration", min: 1000 },
  "require-balance": { key: "requireBalance", kind: "bool" },
  logs: { key: "logsDir", kind: "path" },
};

export type ParsedChaosFlags = { ok: true; options: ChaosOptions } | { ok: false; problems: string[]; help?: boolean };

function convert(name: string, spec: FlagSpec, raw: string, problems: string[]): number | string | boolean | undefined {
  const bad = (why: string) => void problems.push(`--${name}: ${why}, got ${JSON.stringify(raw)}`);
  const inRange = (n: number) => {
    if (spec.min !== undefined && n < spec.min) return bad(`must be at least ${spec.kind === "duration" ? `${spec.min / 1000}s` : spec.min}`);
    if (spec.max !== undefined && n > spec.max) return bad(`must be at most ${spec.max}`);
    return n;
  };
  switch (spec.kind) {
    case "duration": {
      const ms = parseDuration(raw);
      return ms === undefined ? bad("must be a duration like 500ms, 40s or 5m") : inRange(ms);
    }
    case "int":
    case "float": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.kind === "int" && !Number.isSafeInteger(n))) {
        return bad(spec.kind === "int" ? "must be an integer" : "must be a number");
      }
      return inRange(n);
    }
    case "path":
      return raw === "" ? bad("must be a directory") : raw;
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      return bad("must be true or false");
  }
}

export function parseChaosFlags(argv: readonly string[]): ParsedChaosFlags {
  const options: Record<string, unknown> = { ...CHAOS_DEFAULTS };
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: false, problems: [], help: true };
    if (!arg.startsWith("--")) {
      problems.push(`unexpected argument ${JSON.stringify(arg)}`);
      continue;
    }
    const body = arg.slice(2);
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = FLAGS[name];
    if (!spec) {
      problems.push(`unknown flag --${name}`);
      continue;
    }
    let raw = eq === -1 ? (spec.kind === "bool" ? "true" : argv[++i]) : body.slice(eq + 1);
    if (raw === undefined) {
      problems.push(`--${name}: needs a value`);
      continue;
    }
    raw = raw.trim();
    const value = convert(name, spec, raw, problems);
    if (value !== undefined) options[spec.key] = value;
  }
  const o = options as unknown as ChaosOptions;
  if (problems.length === 0 && o.faultWindowMs < o.sequencerKillEveryMs) {
    problems.push(`--fault-window (${o.faultWindowMs / 1000}s) must be at least --sequencer-kill-every (${o.sequencerKillEveryMs / 1000}s)`);
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, options: o };
}
