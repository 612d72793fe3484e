// Command line of the load program. The first five flags and their defaults
// are the operators' test program's (`rockets launch <url> [flags]`); the rest
// are ours. Flags are written the way that program takes them: `--name=value`
// or `--name value`, durations as Go durations (`500ms`, `1m30s`). Parsing is
// total: it returns every problem at once instead of stopping at the first.

export const LogLevel = { Debug: "debug", Info: "info", Warn: "warn", Error: "error" } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];
const LOG_LEVELS: readonly string[] = Object.values(LogLevel);

export interface LaunchOptions {
  url: string;
  /** Pause each sender takes after each message. */
  messageDelayMs: number;
  concurrency: number;
  maxMessages: number;
  seed: number;
  logLevel: LogLevel;
  rockets: number;
  duplicateRate: number;
  reorderWindow: number;
  /** Reuse connections instead of opening one per message as the test program does. */
  keepAlive: boolean;
  /** The API to check the final state against, when set. */
  verifyUrl: string | undefined;
  verifyTimeoutMs: number;
  /**
   * The API key, sent as Bearer to the target and to --verify where their
   * URL has no userinfo (which is sent as Basic auth, like Go does).
   * main.ts falls back to ROCKETS_API_KEY.
   */
  key: string | undefined;
}

export const DEFAULTS = {
  messageDelayMs: 0,
  concurrency: 3,
  maxMessages: 100_000,
  seed: 444,
  logLevel: LogLevel.Info,
  rockets: 20,
  duplicateRate: 0,
  reorderWindow: 0,
  keepAlive: false,
  verifyTimeoutMs: 60_000,
} as const satisfies Omit<LaunchOptions, "url" | "verifyUrl" | "key">;

export const USAGE = `usage: npm run launch -- <url> [flags]

Sends deterministic rocket messages to <url> (e.g. http://localhost:8088/messages)
like the operators' test program, and optionally checks the final state.
A key goes in the URL as the operators' program takes it
(http://rockets:<key>@localhost:8088/messages, sent as Basic auth) or by --key.

  --message-delay duration    pause after each message per sender (default 0)
  --concurrency-level int     messages in flight (default 3)
  --max-messages int          distinct messages to send (default 100000)
  --seed int                  seed for the rockets and the order (default 444)
  --log-level string          debug, info, warn or error (default "info")
  --rockets int               rockets to spread the messages over (default 20)
  --duplicate-rate float      share of messages sent twice, 0..1 (default 0)
  --reorder-window int        positions a message may move (default 0)
  --keep-alive                reuse connections (default: one per message)
  --verify url                API base URL (e.g. http://localhost:8080): wait until
                              every rocket shows its expected final state
  --verify-timeout duration   how long to wait for that (default 1m0s)
  --key string                API key sent as Bearer where a URL has no userinfo
                              (default $ROCKETS_API_KEY); never printed
`;

export type ParsedFlags = { ok: true; options: LaunchOptions } | { ok: false; problems: string[]; help?: boolean };

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration (`0`, `500ms`, `1.5s`, `1h2m3s`) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  return at > 0 ? total : undefined;
}

type Kind = "duration" | "int" | "float" | "string" | "bool" | "url";
interface FlagSpec {
  key: keyof LaunchOptions;
  kind: Kind;
  min?: number;
  max?: number;
}

const FLAGS: Record<string, FlagSpec> = {
  "message-delay": { key: "messageDelayMs", kind: "duration" },
  "concurrency-level": { key: "concurrency", kind: "int", min: 1, max: 10_000 },
  "max-messages": { key: "maxMessages", kind: "int", min: 1, max: 100_000_000 },
  seed: { key: "seed", kind: "int", min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER },
  "log-level": { key: "logLevel", kind: "string" },
  rockets: { key: "rockets", kind: "int", min: 1, max: 10_000_000 },
  "duplicate-rate": { key: "duplicateRate", kind: "float", min: 0, max: 1 },
  "reorder-window": { key: "reorderWindow", kind: "int", min: 0, max: 10_000_000 },
  "keep-alive": { key: "keepAlive", kind: "bool" },
  verify: { key: "verifyUrl", kind: "url" },
  "verify-timeout": { key: "verifyTimeoutMs", kind: "duration" },
  key: { key: "key", kind: "string" },
};

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

function convert(name: string, spec: FlagSpec, raw: string, problems: string[]): unknown {
  const bad = (why: string) => void problems.push(`--${name}: ${why}, got ${JSON.stringify(raw)}`);
  switch (spec.kind) {
    case "duration": {
      const ms = parseDuration(raw);
      return ms === undefined ? bad("must be a duration like 500ms, 2s or 1m30s") : ms;
    }
    case "int":
    case "float": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.kind === "int" && !Number.isSafeInteger(n))) {
        return bad(spec.kind === "int" ? "must be an integer" : "must be a number");
      }
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return bad(`must be between ${spec.min} and ${spec.max}`);
      }
      return n;
    }
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      return bad("must be true or false");
    case "url":
      return isHttpUrl(raw) ? raw.replace(/\/+$/, "") : bad("must be an http(s) URL");
    case "string":
      if (spec.key === "logLevel" && !LOG_LEVELS.includes(raw)) return bad(`must be one of ${LOG_LEVELS.join(", ")}`);
      return raw;
  }
}

export function parseFlags(argv: readonly string[]): ParsedFlags {
  const options: Record<string, unknown> = { ...DEFAULTS, verifyUrl: undefined, key: undefined };
  const problems: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { ok: false, problems: [], help: true };
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = FLAGS[name];
    if (!spec) {
      problems.push(`unknown flag ${arg.slice(0, arg.length - body.length)}${name}`);
      continue;
    }
    let raw: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    if (raw === undefined && spec.kind === "bool") raw = "true";
    if (raw === undefined) {
      raw = argv[i + 1];
      if (raw === undefined) {
        problems.push(`--${name}: needs a value`);
        continue;
      }
      i += 1;
    }
    const value = convert(name, spec, raw, problems);
    if (value !== undefined) options[spec.key] = value;
  }
  if (positional.length === 0) problems.push("the target URL is required, e.g. http://localhost:8088/messages");
  else if (positional.length > 1) problems.push(`expected one target URL, got ${positional.length}: ${positional.join(" ")}`);
  else if (!isHttpUrl(positional[0]!)) problems.push(`the target URL must be an http(s) URL, got ${JSON.stringify(positional[0])}`);
  else options["url"] = positional[0];
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, options: options as unknown as LaunchOptions };
}
