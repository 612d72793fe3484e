// Posts messages the way the operators' test program does: `concurrency`
// senders, each taking the next message in order; by default a new TCP
// connection per message and no Content-Type header. Any 2xx is success.
// Anything else - a 4xx or 5xx, a refused or reset connection, a request
// still unanswered after ~10 s - is retried every 500 ms until it succeeds
// (or the signal aborts the run), so every message is stored at least once.

import http from "node:http";
import https from "node:https";
import type { RocketMessage } from "../../internal/domain/mod.js";
import { targetOf } from "./credentials.js";
import { postOnNewConnection, type Attempt } from "./connection-per-post.js";
import { sleepUnlessAborted } from "./abortable-sleep.js";

export interface SenderOptions {
  /** May carry userinfo, sent as Basic auth the way Go does (credentials.ts). */
  url: string;
  /** Sent as Bearer when the URL carries no userinfo. */
  key?: string;
  concurrency: number;
  messageDelayMs: number;
  keepAlive: boolean;
  retryDelayMs?: number;
  requestTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called for each failed attempt, before its retry. */
  onRetry?: (message: RocketMessage, why: string) => void;
  /** Called for each message acknowledged with a 2xx. */
  onSuccess?: () => void;
}

export interface SendStats {
  /** Messages acknowledged with a 2xx. */
  sent: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** Failed attempts by cause: `503`, `ECONNREFUSED`, `timeout`... */
  failures: Map<string, number>;
  /** performance.now() when the first POST went out and when the last 2xx came back. */
  startedAt: number;
  lastPostAt: number;
}

const sleep = sleepUnlessAborted;

export class AbortedError extends Error {
  override name = "AbortedError";
}

export class Sender {
  readonly stats: SendStats = { sent: 0, retries: 0, failures: new Map(), startedAt: 0, lastPostAt: 0 };
  private readonly target: URL;
  private readonly authorization: string | undefined;
  private readonly client: typeof http | typeof https;
  private readonly agent: http.Agent | false;
  private readonly retryDelayMs: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: SenderOptions) {
    ({ url: this.target, authorization: this.authorization } = targetOf(options.url, options.key));
    this.client = this.target.protocol === "https:" ? https : http;
    this.agent = options.keepAlive
      ? new this.client.Agent({ keepAlive: true, maxSockets: options.concurrency })
      : false;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  /** Sends every message; resolves when each one got a 2xx. Rejects with AbortedError when aborted. */
  async sendAll(messages: readonly RocketMessage[]): Promise<SendStats> {
    let next = 0;
    this.stats.startedAt = performance.now();
    const worker = async () => {
      while (next < messages.length) {
        const message = messages[next++]!;
        await this.deliver(message);
        await sleep(this.options.messageDelayMs, this.options.signal);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, messages.length) }, worker));
    } finally {
      if (this.agent) this.agent.destroy();
    }
    return this.stats;
  }

  private async deliver(message: RocketMessage): Promise<void> {
    const body = Buffer.from(JSON.stringify(message));
    for (;;) {
      if (this.options.signal?.aborted) throw new AbortedError("launch aborted");
      const attempt = await this.post(body);
      if (attempt.ok) {
        this.stats.sent += 1;
        this.stats.lastPostAt = performance.now();
        this.options.onSuccess?.();
        return;
      }
      this.stats.retries += 1;
      this.stats.failures.set(attempt.why, (this.stats.failures.get(attempt.why) ?? 0) + 1);
      this.options.onRetry?.(message, attempt.why);
      await sleep(this.retryDelayMs, this.options.signal);
    }
  }

  private post(body: Buffer): Promise<Attempt> {
    if (!this.agent && this.target.protocol === "http:") return postOnNewConnection(this.target, body, this.requestTimeoutMs, this.authorization);
    return new Promise((resolve) => {
      let settled = false;
      const finish = (attempt: Attempt) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(attempt);
      };
      const req = this.client.request(this.target, {
        method: "POST",
        agent: this.agent,
        headers: { "Content-Length": body.length, ...(this.authorization === undefined ? {} : { Authorization: this.authorization }) },
      });
      const timer = setTimeout(() => {
        finish({ ok: false, why: "timeout" });
        req.destroy();
      }, this.requestTimeoutMs);
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        res.on("error", () => finish({ ok: false, why: "ECONNRESET" }));
        res.on("end", () => finish(status >= 200 && status < 300 ? { ok: true } : { ok: false, why: String(status) }));
        res.resume();
      });
      req.on("error", (err: NodeJS.ErrnoException) => finish({ ok: false, why: err.code ?? err.message }));
      req.end(body);
    });
  }
}
