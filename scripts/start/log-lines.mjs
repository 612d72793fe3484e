// Turns a child's output into readable lines with a per-service prefix.
// Services log pino JSON; each such line becomes one line: time, level,
// message, then the other fields as key=value (an error as its type and
// message). Anything else is printed as it came.

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
  const time = typeof entry.time === "string" ? entry.time.slice(11, 23) : new Date(entry.time ?? Date.now()).toISOString().slice(11, 23);
  const fields = Object.entries(entry)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => (k === "err" ? `err=${JSON.stringify(describeError(v))}` : `${k}=${value(v)}`));
  const lvl = color ? `\x1b[${COLORS[level] ?? 0}m${level.padEnd(5)}\x1b[0m` : level.padEnd(5);
  return `${time} ${lvl} ${entry.msg ?? ""}${fields.length ? ` ${fields.join(" ")}` : ""}`;
}

let nextColor = 0;

/** A writer that prefixes every complete line from a stream with the service's name. */
export function linePrinter(name, out, { color = false, width = 9 } = {}) {
  const tint = PREFIX_COLORS[nextColor++ % PREFIX_COLORS.length];
  const prefix = color ? `\x1b[${tint}m${name.padEnd(width)}|\x1b[0m ` : `${name.padEnd(width)}| `;
  let pending = "";
  const emit = (line) => {
    if (line.length === 0) return;
    out.write(`${prefix}${formatPinoLine(line, color) ?? line}\n`);
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
