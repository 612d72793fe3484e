// Message times the way the operators' Go program writes them: RFC 3339 with
// nanoseconds and trailing zeros trimmed (Go's time.RFC3339Nano), in the
// sender's UTC offset, e.g. `2025-04-02T09:21:50.458989221+02:00`.

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Formats nanoseconds since the epoch in the given offset (minutes east of UTC). */
export function formatMessageTime(epochNanos: bigint, offsetMinutes: number): string {
  const local = epochNanos + BigInt(offsetMinutes) * 60_000_000_000n;
  const fraction = Number(((local % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
  const date = new Date(Number((local - BigInt(fraction)) / 1_000_000n));
  const base =
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}` +
    `T${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  const nanos = fraction === 0 ? "" : `.${pad(fraction, 9).replace(/0+$/, "")}`;
  if (offsetMinutes === 0) return `${base}${nanos}Z`;
  const sign = offsetMinutes > 0 ? "+" : "-";
  const abs = Math.abs(offsetMinutes);
  return `${base}${nanos}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
