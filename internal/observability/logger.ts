// One root logger per process. Services log `log.info({ fields }, "constant
// message")` with errors under `err`, so that log lines can be grouped by
// message and searched by field.

import { pino, type Logger } from "pino";
import type { LogLevel } from "../config/common.js";

export type { Logger };

export function createLogger(service: string, level: LogLevel): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}
