// What a person watching the launch sees: a progress bar on a terminal
// (redrawn in place a few times a second, on stderr) and one summary line at
// the end (on stdout).

import type { SendStats } from "./sender.js";

export class ProgressBar {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly total: number,
    private readonly stats: SendStats,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Draws only when the stream is a terminal; elsewhere (CI, pipes) it stays silent. */
  start(): void {
    if (!this.stream.isTTY) return;
    this.timer = setInterval(() => this.draw(), 200);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
    this.stream.write("\n");
  }

  private draw(): void {
    const { sent, retries, startedAt } = this.stats;
    const width = 30;
    const share = this.total === 0 ? 1 : sent / this.total;
    const filled = Math.round(share * width);
    const seconds = (performance.now() - startedAt) / 1000;
    const rate = seconds > 0 ? Math.round(sent / seconds) : 0;
    this.stream.write(
      `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ` +
        `${sent}/${this.total} ${rate} msg/s, ${retries} retries `,
    );
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
