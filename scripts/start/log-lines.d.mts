// Types of log-lines.mjs for the TypeScript that uses it (the chaos run's log tails).

export const PREFIX_WIDTH: number;

/** One pino JSON line as `time LEVEL message key=value...`, or undefined when the line is not one. */
export function formatPinoLine(line: string, color?: boolean): string | undefined;

/** One nats-server log line as `time LEVEL text`, or undefined when the line is not one. */
export function formatNatsLine(line: string, color?: boolean): string | undefined;

export interface LinePrinter {
  write(chunk: Buffer | string): void;
  flush(): void;
  say(message: string): void;
}

export function linePrinter(name: string, out: NodeJS.WritableStream, options?: { color?: boolean; width?: number }): LinePrinter;
