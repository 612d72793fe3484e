// Server-Sent Events for rocket changes: a fleet-wide stream and one per rocket.
//
// Slow clients: each stream writes to its socket until the socket buffer is
// full (write() returns false), then holds back events, keeping only the
// latest one per rocket (a newer state makes an older one worthless), and
// resumes on 'drain'. A client that still falls behind by more than
// maxQueuedBytes of held-back events is disconnected (it can reconnect and
// start from the current state). So a stream never holds more than about the
// socket buffer plus maxQueuedBytes, however slowly its client reads.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { FleetView, RocketChange } from "../../internal/view/fleet-view.js";
import type { SseSettings } from "./config.js";
import { SseDropReason, type ApiMetrics } from "./metrics.js";

/** Tells the client how long to wait before reconnecting. */
const RETRY_MS = 2000;

/**
 * One event frame. JSON.stringify gives the same text as the Rocket schema's
 * serializer: rocketViewOf builds every rocket with exactly the schema's
 * fields, in its order.
 */
export function rocketEvent(change: RocketChange): string {
  if (change.rocket === null) {
    return `id: ${change.revision}\nevent: removed\ndata: ${JSON.stringify({ channel: change.channel })}\n\n`;
  }
  return `id: ${change.revision}\nevent: rocket\ndata: ${JSON.stringify(change.rocket)}\n\n`;
}

export class SseStream {
  private waitingForDrain = false;
  private readonly held = new Map<string, string>();
  private heldBytes = 0;
  private closed = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxQueuedBytes: number,
    private readonly onDrop: () => void,
  ) {
    res.on("drain", () => this.flush());
  }

  get isClosed(): boolean {
    return this.closed || this.res.destroyed;
  }

  /** Bytes held back for this client, beyond what the socket buffers. */
  get queuedBytes(): number {
    return this.heldBytes;
  }

  open(): void {
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Tell nginx-style proxies not to buffer the stream.
      "x-accel-buffering": "no",
    });
    this.write(`retry: ${RETRY_MS}\n\n`);
  }

  /** Sends an event about `key` (a channel); while the client lags, only the latest per key is kept. */
  send(key: string, event: string): void {
    if (this.isClosed) return;
    if (!this.waitingForDrain) {
      this.write(event);
      return;
    }
    const previous = this.held.get(key);
    // Re-inserting moves the key to the end: held events go out in the order of their latest change.
    if (previous !== undefined) {
      this.heldBytes -= previous.length;
      this.held.delete(key);
    }
    this.held.set(key, event);
    this.heldBytes += event.length;
    if (this.heldBytes > this.maxQueuedBytes) this.drop();
  }

  /** A comment line that keeps intermediaries from timing out an idle stream; skipped while the client lags. */
  heartbeat(): void {
    if (!this.isClosed && !this.waitingForDrain) this.write(": heartbeat\n\n");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held.clear();
    this.heldBytes = 0;
    this.res.end();
  }

  private drop(): void {
    this.closed = true;
    this.held.clear();
    this.heldBytes = 0;
    this.onDrop();
    this.res.destroy();
  }

  private write(chunk: string): void {
    if (!this.res.write(chunk)) this.waitingForDrain = true;
  }

  private flush(): void {
    this.waitingForDrain = false;
    for (const [key, event] of this.held) {
      this.held.delete(key);
      this.heldBytes -= event.length;
      this.write(event);
      if (this.waitingForDrain || this.isClosed) return;
    }
  }
}

/**
 * Fans view changes out to open streams. It subscribes to the view once and
 * serializes each change once, however many clients listen.
 */
export class SseHub {
  private readonly fleet = new Set<SseStream>();
  private readonly byChannel = new Map<string, Set<SseStream>>();
  private count = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly view: FleetView,
    private readonly settings: SseSettings,
    private readonly metrics: Pick<ApiMetrics, "sseClients" | "sseDropped">,
  ) {
    this.unsubscribe = view.subscribe((change) => this.broadcast(change));
    this.heartbeat = setInterval(() => this.beat(), settings.heartbeatMs);
    this.heartbeat.unref();
  }

  get clients(): number {
    return this.count;
  }

  /** Whether another stream may open. */
  get full(): boolean {
    return this.count >= this.settings.maxClients;
  }

  /** Streams changes to every rocket (`channel` undefined) or to one rocket, starting with its current state. */
  open(req: IncomingMessage, res: ServerResponse, channel?: string): void {
    if (this.full) throw new Error("SSE client limit reached; callers check `full` first");
    const stream = new SseStream(res, this.settings.maxQueuedBytes, () => this.metrics.sseDropped.inc({ reason: SseDropReason.Slow }));
    let group = this.fleet;
    if (channel !== undefined) {
      group = this.byChannel.get(channel) ?? new Set();
      this.byChannel.set(channel, group);
    }
    group.add(stream);
    this.count += 1;
    this.metrics.sseClients.inc();
    const forget = () => {
      if (!group.delete(stream)) return;
      this.count -= 1;
      this.metrics.sseClients.dec();
      if (channel !== undefined && group.size === 0) this.byChannel.delete(channel);
    };
    res.on("close", forget);
    req.on("close", forget);
    stream.open();
    if (channel !== undefined) {
      const entry = this.view.get(channel);
      if (entry) stream.send(channel, rocketEvent({ channel, rocket: entry.rocket, revision: entry.revision }));
    }
  }

  /** Ends every stream (at shutdown) and stops listening to the view. */
  close(): void {
    clearInterval(this.heartbeat);
    this.unsubscribe();
    for (const stream of this.fleet) stream.close();
    for (const group of this.byChannel.values()) for (const stream of group) stream.close();
  }

  private broadcast(change: RocketChange): void {
    const followers = this.byChannel.get(change.channel);
    if (this.fleet.size === 0 && !followers) return;
    const event = rocketEvent(change);
    for (const stream of this.fleet) stream.send(change.channel, event);
    if (followers) for (const stream of followers) stream.send(change.channel, event);
  }

  private beat(): void {
    for (const stream of this.fleet) stream.heartbeat();
    for (const group of this.byChannel.values()) for (const stream of group) stream.heartbeat();
  }
}
