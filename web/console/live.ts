// The fleet's live event stream, kept open for as long as the console runs.
//
// Guarantees:
// - Recovers by itself: the browser's EventSource reconnects after a dropped
//   connection (sending Last-Event-ID, so the API replays what was missed);
//   when the browser gives up on it (an error status, e.g. 503 while the API
//   is busy), a new one is opened with backoff, resuming from the last id.
// - Says where it stands: `live` once the API said the stream is caught up
//   (event: synced), `reconnecting` from the moment it drops, `offline` when
//   the browser is offline or nothing has answered for OFFLINE_AFTER_MS.
// - A `reload` from the API (it could not replay what was missed) and every
//   resumed sync are passed on, so the page re-reads what it shows.

import type { Rocket } from "./api.js";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

export interface LiveHandlers {
  rocket(rocket: Rocket): void;
  removed(channel: string): void;
  /** The stream is current; `resumed` when it was connected before (the page may have missed a reload). */
  synced(resumed: boolean): void;
  /** The API could not replay what was missed: re-read everything shown. */
  reload(): void;
  state(state: ConnectionState): void;
}

const OFFLINE_AFTER_MS = 15_000;
const MAX_BACKOFF_MS = 10_000;

export class LiveStream {
  private source: EventSource | undefined;
  private lastId: string | undefined;
  private everSynced = false;
  private failingSince: number | undefined;
  private reopenTimer: number | undefined;
  private offlineTimer: number | undefined;
  private attempts = 0;
  private current: ConnectionState = "connecting";

  constructor(
    private readonly url: string,
    private readonly handlers: LiveHandlers,
  ) {
    window.addEventListener("online", () => this.reopenSoon(0));
    window.addEventListener("offline", () => this.setState("offline"));
  }

  get state(): ConnectionState {
    return this.current;
  }

  start(): void {
    this.open();
  }

  private open(): void {
    this.source?.close();
    const url = this.lastId === undefined ? this.url : `${this.url}${this.url.includes("?") ? "&" : "?"}lastEventId=${this.lastId}`;
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("rocket", (e) => {
      this.lastId = (e as MessageEvent<string>).lastEventId || this.lastId;
      this.handlers.rocket(JSON.parse((e as MessageEvent<string>).data) as Rocket);
    });
    source.addEventListener("removed", (e) => {
      this.lastId = (e as MessageEvent<string>).lastEventId || this.lastId;
      this.handlers.removed((JSON.parse((e as MessageEvent<string>).data) as { channel: string }).channel);
    });
    source.addEventListener("reload", () => this.handlers.reload());
    source.addEventListener("synced", (e) => {
      this.lastId = (e as MessageEvent<string>).lastEventId || this.lastId;
      this.attempts = 0;
      this.failingSince = undefined;
      window.clearTimeout(this.offlineTimer);
      this.setState("live");
      this.handlers.synced(this.everSynced);
      this.everSynced = true;
    });
    source.onerror = () => {
      if (this.source !== source) return;
      this.failingSince ??= Date.now();
      this.setState(navigator.onLine ? "reconnecting" : "offline");
      window.clearTimeout(this.offlineTimer);
      this.offlineTimer = window.setTimeout(() => {
        if (this.current === "reconnecting") this.setState("offline");
      }, OFFLINE_AFTER_MS);
      // CONNECTING: the browser retries by itself. CLOSED: it gave up; open a new one.
      if (source.readyState === EventSource.CLOSED) {
        this.attempts += 1;
        this.reopenSoon(Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempts, 5)));
      }
    };
  }

  private reopenSoon(delayMs: number): void {
    window.clearTimeout(this.reopenTimer);
    this.reopenTimer = window.setTimeout(() => this.open(), delayMs);
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.handlers.state(state);
  }
}
