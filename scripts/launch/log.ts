// The load program's own log: plain lines on stderr, filtered by --log-level,
// so stdout carries nothing but the summary line.

import type { LogLevel } from "./flags.js";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Log {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLog(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Log {
  const at = (lvl: LogLevel) => (message: string) => {
    if (RANK[lvl] >= RANK[level]) write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${message}\n`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
