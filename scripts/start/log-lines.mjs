// Turns a child's output into readable lines with a per-service prefix.
// Services log pino JSON; each such line becomes one line: local time, level,
// message, then the other fields as key=value (an error as its type and
// message). nats-server's own lines get the same time and level columns.
// Anything else is printed as it came.

export const PREFIX_WIDTH = 10;

const LEVELS = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const COLORS = { TRACE: 90, DEBUG: 90, INFO: 32, WARN: 33, ERROR: 31, FATAL: 31 };
const PREFIX_COLORS = [36, 35, 34, 33, 32];
const OMIT = new Set(["level", "time", "msg", "pid", "hostname", "service", "v"]);

function value(v) {
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

function describeError(err) {
  if (err && typeof err === "object") {
    const type = err.type ?? err.name ?? "Error";
    const code = err.code !== undefined ? ` (${err.code})` : "";
    return `${type}${code}: ${err.message ?? JSON.stringify(err)}`;
  }
  return String(err);
}

/** Formats one pino JSON line, or returns undefined when the line is not one. */
export function formatPinoLine(line, color = false) {
  if (!line.startsWith("{")) return undefined;
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof entry !== "object" || entry === null || !("level" in entry)) return undefined;
  const level = LEVELS[entry.level] ?? String(entry.level);
  const time = localTime(new Date(entry.time ?? Date.now()));
  const fields = Object.entries(entry)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => (k === "err" ? `err=${JSON.stringify(describeError(v))}` : `${k}=${value(v)}`));
  const lvl = color ? `\x1b[${COLORS[level] ?? 0}m${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
  return `${time} ${lvl} ${entry.msg ?? ""}${fields.length ? ` ${fields.join(" ")}` : ""}`;
}

function localTime(date) {
  if (Number.isNaN(date.getTime())) date = new Date();
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

const NATS_LEVELS = { TRC: "TRACE", DBG: "DEBUG", INF: "INFO", WRN: "WARN", ERR: "ERROR", FTL: "FATAL" };
const NATS_LINE = /^\[\d+\] \d{4}\/\d\d\/\d\d (\d\d:\d\d:\d\d\.\d{3})\d* \[(\w+)\] (.*)$/;

/** Formats one nats-server log line (`[pid] date time [INF] text`), or returns undefined. */
export function formatNatsLine(line, color = false) {
  const m = NATS_LINE.exec(line);
  if (!m) return undefined;
  const level = NATS_LEVELS[m[2]] ?? m[2];
  const lvl = color ? `\x1b[${COLORS[level] ?? 0}m${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
  return `${m[1]} ${lvl} ${m[3]}`;
}

let nextColor = 0;

/** A writer that prefixes every complete line from a stream with the service's name. */
export function linePrinter(name, out, { color = false, width = PREFIX_WIDTH } = {}) {
  const tint = PREFIX_COLORS[nextColor++ % PREFIX_COLORS.length];
  const prefix = color ? `\x1b[${tint}m${name.padEnd(width)}|\x1b[0m ` : `${name.padEnd(width)}| `;
  let pending = "";
  const emit = (line) => {
    if (line.length === 0) return;
    out.write(`${prefix}${formatPinoLine(line, color) ?? formatNatsLine(line, color) ?? line}\n`);
  };
  return {
    write(chunk) {
      const lines = (pending + chunk.toString()).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) emit(line.replace(/\r$/, ""));
    },
    flush() {
      emit(pending);
      pending = "";
    },
    say(message) {
      out.write(`${prefix}${message}\n`);
    },
  };
}
