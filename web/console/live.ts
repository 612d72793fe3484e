// The fleet's live event stream, kept open for as long as the console runs.
//
// Read with fetch rather than EventSource: EventSource cannot send an
// Authorization header, and the stream needs the session's key like every
// other read (a key in the URL would end up in logs and proxies). The
// Server-Sent Events framing is parsed here (event, data, id, retry;
// comments are heartbeats).
//
// Guarantees:
// - Recovers by itself: a stream that fails or ends is opened again, after
//   the server's `retry` delay at first and with backoff while it keeps
//   failing, resuming from the last event id (sent as Last-Event-ID, so the
//   API replays what was missed). A 401 or 403 is not retried: the key is
//   forgotten and the console asks for one (session.ts).
// - Says where it stands: `live` once the API said the stream is caught up
//   (event: synced), `reconnecting` from the moment it drops, `offline` when
//   the browser is offline or nothing has answered for OFFLINE_AFTER_MS.
// - A `reload` from the API (it could not replay what was missed) and every
//   resumed sync are passed on, so the page re-reads what it shows.

import type { Rocket } from "./api.js";
import { keyRefused, session } from "./session.js";

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

interface StreamEvent {
  event: string;
  data: string;
  id: string | undefined;
}

const OFFLINE_AFTER_MS = 15_000;
const MAX_BACKOFF_MS = 10_000;

/** Splits a stream's text into events as they complete; keeps the unfinished rest. */
export class EventParser {
  private buffer = "";
  /** The server's reconnection delay (`retry:`), when it sent one. */
  retryMs: number | undefined;

  push(text: string): StreamEvent[] {
    this.buffer += text.replace(/\r\n?/g, "\n");
    const events: StreamEvent[] = [];
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      let id: string | undefined;
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
        else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
      }
      if (data.length > 0 || id !== undefined) events.push({ event, data: data.join("\n"), id });
    }
    return events;
  }
}

export class LiveStream {
  private aborter: AbortController | undefined;
  private lastId: string | undefined;
  private everSynced = false;
  private retryMs = 2000;
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
    void this.open();
  }

  stop(): void {
    window.clearTimeout(this.reopenTimer);
    this.aborter?.abort();
    this.aborter = undefined;
  }

  private async open(): Promise<void> {
    this.aborter?.abort();
    const aborter = new AbortController();
    this.aborter = aborter;
    const headers: Record<string, string> = { accept: "text/event-stream", ...session.headers() };
    if (this.lastId !== undefined) headers["last-event-id"] = this.lastId;
    try {
      const res = await fetch(this.url, { headers, signal: aborter.signal, cache: "no-store" });
      if (res.status === 401 || res.status === 403) {
        this.stop();
        keyRefused();
        return;
      }
      if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
      const parser = new EventParser();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const e of parser.push(value)) this.dispatch(e);
        if (parser.retryMs !== undefined) this.retryMs = parser.retryMs;
      }
    } catch {
      // Failed or cut; below it is treated like a stream that ended.
    }
    if (this.aborter !== aborter) return;
    this.dropped();
  }

  private dispatch(e: StreamEvent): void {
    if (e.id !== undefined && e.id !== "") this.lastId = e.id;
    switch (e.event) {
      case "rocket":
        this.handlers.rocket(JSON.parse(e.data) as Rocket);
        break;
      case "removed":
        this.handlers.removed((JSON.parse(e.data) as { channel: string }).channel);
        break;
      case "reload":
        this.handlers.reload();
        break;
      case "synced":
        this.attempts = 0;
        window.clearTimeout(this.offlineTimer);
        this.setState("live");
        this.handlers.synced(this.everSynced);
        this.everSynced = true;
        break;
    }
  }

  private dropped(): void {
    this.setState(navigator.onLine ? "reconnecting" : "offline");
    if (this.attempts === 0) {
      window.clearTimeout(this.offlineTimer);
      this.offlineTimer = window.setTimeout(() => {
        if (this.current === "reconnecting") this.setState("offline");
      }, OFFLINE_AFTER_MS);
    }
    this.attempts += 1;
    // The server's delay first, as EventSource would; longer while it keeps failing.
    this.reopenSoon(this.attempts === 1 ? this.retryMs : Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** Math.min(this.attempts - 1, 5)));
  }

  private reopenSoon(delayMs: number): void {
    window.clearTimeout(this.reopenTimer);
    this.reopenTimer = window.setTimeout(() => void this.open(), delayMs);
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.handlers.state(state);
  }
}
