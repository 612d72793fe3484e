// Reads configuration from the environment once, at start, and reports every
// problem together: a misconfigured service fails with one message that lists
// all that is wrong, never one problem per restart. Nothing else in the
// codebase reads process.env.

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

const DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const SIZE_UNITS = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
} as const;

export class EnvReader {
  private readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  string(name: string, fallback: string): string;
  string(name: string): string | undefined;
  string(name: string, fallback?: string): string | undefined {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, range: { min: number; max: number }): number;
  int(name: string, fallback: undefined, range: { min: number; max: number }): number | undefined;
  int(name: string, fallback: number | undefined, { min, max }: { min: number; max: number }): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name} must be one of ${allowed.join(", ")}, got "${v}"`);
      return fallback;
    }
    return v as T;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off"].includes(v)) return false;
    this.problems.push(`${name} must be true or false, got "${v}"`);
    return fallback;
  }

  /** A duration: plain seconds, or a number with s, m, h or d ("90s", "12h", "7d"); returned in seconds. */
  duration(name: string, fallback: number | undefined, { min, max }: { min: number; max: number }): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const m = /^(\d+)(s|m|h|d)?$/.exec(v);
    const seconds = m ? Number(m[1]) * DURATION_UNITS[(m[2] ?? "s") as keyof typeof DURATION_UNITS] : NaN;
    if (!Number.isSafeInteger(seconds) || seconds < min || seconds > max) {
      this.problems.push(`${name} must be a duration from ${min}s to ${max}s (seconds, or a number with s, m, h or d), got "${v}"`);
      return fallback;
    }
    return seconds;
  }

  /** A size: plain bytes, or a number with KiB, MiB, GiB, TiB (or KB, MB, GB, TB, powers of 1000); returned in bytes. */
  bytes(name: string, fallback: number | undefined, { min, max }: { min: number; max: number }): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const m = /^(\d+)\s*([KMGT]i?B)?$/i.exec(v);
    const unit = m?.[2] ? m[2].toUpperCase().replace("IB", "iB") : "B";
    const size = m && unit in SIZE_UNITS ? Number(m[1]) * SIZE_UNITS[unit as keyof typeof SIZE_UNITS] : NaN;
    if (!Number.isSafeInteger(size) || size < min || size > max) {
      this.problems.push(`${name} must be a size from ${min} to ${max} bytes (bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB, TB), got "${v}"`);
      return fallback;
    }
    return size;
  }

  list(name: string, fallback: string[]): string[] {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }

  /** Records a problem found by a cross-field check. */
  problem(message: string): void {
    this.problems.push(message);
  }

  /** Throws ConfigError listing every problem seen so far. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}
