// What a person watching the launch sees: a progress bar on a terminal
// (redrawn in place a few times a second, on stderr), or where stderr is not
// a terminal (CI, a pipe, a log file) a progress line every few seconds, so
// that a long run is never silent; and one summary line at the end (on
// stdout).

import type { SendStats } from "./sender.js";

/** How often a progress line is written where there is no terminal to redraw a bar on. */
export const PROGRESS_LINE_EVERY_MS = 5000;

export class ProgressBar {
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly stats: SendStats,
    private readonly stream: Pick<NodeJS.WriteStream, "write" | "isTTY"> = process.stderr,
    private readonly lineEveryMs = PROGRESS_LINE_EVERY_MS,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  start(): void {
    this.timer = this.tty ? setInterval(() => this.draw(), 200) : setInterval(() => this.line(), this.lineEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (!this.tty) return;
    this.draw();
    this.stream.write("\n");
  }

  private figures() {
    const { sent, retries, startedAt } = this.stats;
    const share = this.total === 0 ? 1 : sent / this.total;
    const seconds = startedAt > 0 ? (performance.now() - startedAt) / 1000 : 0;
    const rate = seconds > 0 ? Math.round(sent / seconds) : 0;
    return { sent, retries, share, rate };
  }

  private draw(): void {
    const { sent, retries, share, rate } = this.figures();
    const width = 30;
    const filled = Math.round(share * width);
    this.stream.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ` +
        `${sent}/${this.total} ${rate} msg/s, ${retries} retries `,
    );
  }

  private line(): void {
    const { sent, retries, share, rate } = this.figures();
    this.stream.write(`${new Date().toISOString()} INFO  sent ${sent}/${this.total} (${(share * 100).toFixed(0)}%), ${rate} msg/s, ${retries} retries\n`);
  }
}

export interface Summary {
  posts: number;
  messages: number;
  duplicates: number;
  sendMs: number;
  retries: number;
  failures: ReadonlyMap<string, number>;
  verify?: { ok: boolean; settleMs: number; matched: number; rockets: number };
}

export function summaryLine(s: Summary): string {
  const rate = s.sendMs > 0 ? (s.posts * 1000) / s.sendMs : 0;
  const causes = [...s.failures].map(([why, n]) => `${why} x${n}`).join(", ");
  const parts = [
    `${s.posts} messages (${s.messages} distinct, ${s.duplicates} duplicates) in ${(s.sendMs / 1000).toFixed(2)} s`,
    `${Math.round(rate)} messages/s`,
    `${s.retries} retries${causes ? ` (${causes})` : ""}`,
  ];
  if (s.verify) {
    parts.push(
      s.verify.ok
        ? `settled in ${(s.verify.settleMs / 1000).toFixed(3)} s (${s.verify.rockets}/${s.verify.rockets} rockets exact)`
        : `NOT settled after ${(s.verify.settleMs / 1000).toFixed(1)} s (${s.verify.matched}/${s.verify.rockets} rockets exact)`,
    );
  }
  return parts.join(", ");
}
