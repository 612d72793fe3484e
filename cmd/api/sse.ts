// Server-Sent Events for rocket changes: a fleet-wide stream and one per rocket.
//
// Ids and resuming: every rocket/removed event's id is the state bucket's
// revision of that change, one order shared by every API instance. Events go
// out in increasing id order, so a client that saw id N saw every change up
// to N. Reconnecting with Last-Event-ID N (browsers send it by themselves)
// first replays what the view says changed since N (each such rocket's
// current state, each removal), oldest first, then live changes: nothing is
// missed. When the view cannot list that exactly (see FleetView.changesSince)
// the stream says `event: reload` instead. Either way the stream then sends
// `event: synced` {revision, rockets} with id = the view's revision: from
// there on the client is current. A new stream (no id) starts with `synced`
// at once, or, with ?snapshot=true, after replaying every rocket.
//
// Slow clients: each stream writes to its socket until the socket buffer is
// full (write() returns false), then holds back events, keeping only the
// latest one per rocket (a newer state makes an older one worthless), and
// resumes on 'drain'. A replay is produced lazily, one event per socket write,
// and live events during it are held the same way. A client that still falls
// behind by more than maxQueuedBytes of held-back events is disconnected (it
// resumes from its last id). So a stream never holds more than about the
// socket buffer plus maxQueuedBytes, however slowly its client reads.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { FleetView, MissedChange, RocketChange } from "../../internal/view/fleet-view.js";
import type { SseSettings } from "./config.js";
import { SseDropReason, type ApiMetrics } from "./metrics.js";

/** Tells the client how long to wait before reconnecting. */
const RETRY_MS = 2000;
/** How often streams opened while the view loads check whether it is ready. */
const READY_POLL_MS = 100;

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

function syncedEvent(view: FleetView): string {
  return `id: ${view.revision}\nevent: synced\ndata: ${JSON.stringify({ revision: view.revision, rockets: view.size })}\n\n`;
}

function reloadEvent(reason: string): string {
  return `event: reload\ndata: ${JSON.stringify({ reason })}\n\n`;
}

/**
 * The events of a replay, read from the view as each is sent. A change that
 * moved on since the list was made yields nothing: its newer event is live.
 */
function* replay(view: FleetView, changes: readonly MissedChange[]): Iterator<string | undefined> {
  for (const c of changes) {
    const entry = view.get(c.channel);
    if (c.removed) yield entry ? undefined : rocketEvent({ channel: c.channel, rocket: null, revision: c.revision });
    else yield entry && entry.revision === c.revision ? rocketEvent({ channel: c.channel, rocket: entry.rocket, revision: c.revision }) : undefined;
  }
}

export class SseStream {
  private waitingForDrain = false;
  private readonly held = new Map<string, string>();
  private heldBytes = 0;
  private closed = false;
  /** False while the view loads: the replay, computed once it is loaded, covers whatever changes meanwhile. */
  private accepting = true;
  private backlog: Iterator<string | undefined> | undefined;
  private whenCaughtUp: (() => string) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxQueuedBytes: number,
    private readonly onDrop: () => void,
  ) {
    res.on("drain", () => {
      this.waitingForDrain = false;
      this.pump();
    });
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

  /** Sends an event about `key` (a channel); while the client lags or a replay runs, only the latest per key is kept. */
  send(key: string, event: string): void {
    if (this.isClosed || !this.accepting) return;
    if (!this.waitingForDrain && !this.backlog) {
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

  /** Ignores live events until catchUp(): for a stream opened while the view is still loading. */
  defer(): void {
    this.accepting = false;
  }

  /**
   * Sends `events` before any live event (which are held meanwhile), then
   * the event `done` makes once everything before it is written.
   */
  catchUp(events: Iterator<string | undefined>, done: () => string): void {
    this.accepting = true;
    this.backlog = events;
    this.whenCaughtUp = done;
    this.pump();
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
    this.backlog = undefined;
    this.onDrop();
    this.res.destroy();
  }

  private write(chunk: string): void {
    if (!this.res.write(chunk)) this.waitingForDrain = true;
  }

  /** Writes what is owed, in order (replay, held live events, the caught-up event), until the socket is full. */
  private pump(): void {
    while (this.backlog && !this.waitingForDrain && !this.isClosed) {
      const next = this.backlog.next();
      if (next.done) this.backlog = undefined;
      else if (next.value !== undefined) this.write(next.value);
    }
    if (this.backlog) return;
    for (const [key, event] of this.held) {
      if (this.waitingForDrain || this.isClosed) return;
      this.held.delete(key);
      this.heldBytes -= event.length;
      this.write(event);
    }
    if (this.whenCaughtUp && this.held.size === 0 && !this.waitingForDrain && !this.isClosed) {
      const done = this.whenCaughtUp;
      this.whenCaughtUp = undefined;
      this.write(done());
    }
  }
}

/** Where a new stream starts. */
export interface StreamStart {
  /** Last-Event-ID (header or query) as given; undefined for a new stream. */
  lastEventId?: string;
  /** Replay every rocket first (fleet stream only). */
  snapshot?: boolean;
}

/**
 * Fans view changes out to open streams. It subscribes to the view once and
 * serializes each change once, however many clients listen.
 */
export class SseHub {
  private readonly fleet = new Set<SseStream>();
  private readonly byChannel = new Map<string, Set<SseStream>>();
  private count = 0;
  /** Open streams per client (IP address); a client with none has no entry. */
  private readonly perClient = new Map<string, number>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  /** Streams opened before the view was loaded, started once it is. */
  private readonly deferred = new Map<SseStream, () => void>();
  private readyPoll: NodeJS.Timeout | undefined;

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

  /** Whether `client` already holds as many streams as one client may. */
  fullFor(client: string): boolean {
    return (this.perClient.get(client) ?? 0) >= (this.settings.maxClientsPerClient ?? this.settings.maxClients);
  }

  /**
   * Streams changes to every rocket (`channel` undefined) or to one rocket,
   * which starts with its current state; `client` (its IP address) is what
   * the per-client limit counts.
   */
  open(req: IncomingMessage, res: ServerResponse, channel?: string, start: StreamStart = {}, client = ""): void {
    if (this.full || this.fullFor(client)) throw new Error("SSE client limit reached; callers check `full` and `fullFor` first");
    const stream = new SseStream(res, this.settings.maxQueuedBytes, () => this.metrics.sseDropped.inc({ reason: SseDropReason.Slow }));
    let group = this.fleet;
    if (channel !== undefined) {
      group = this.byChannel.get(channel) ?? new Set();
      this.byChannel.set(channel, group);
    }
    group.add(stream);
    this.count += 1;
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    this.metrics.sseClients.inc();
    const forget = () => {
      this.deferred.delete(stream);
      if (!group.delete(stream)) return;
      this.count -= 1;
      const held = (this.perClient.get(client) ?? 1) - 1;
      if (held > 0) this.perClient.set(client, held);
      else this.perClient.delete(client);
      this.metrics.sseClients.dec();
      if (channel !== undefined && group.size === 0) this.byChannel.delete(channel);
    };
    res.on("close", forget);
    req.on("close", forget);
    stream.open();
    const begin = () => this.begin(stream, channel, start);
    if (this.view.ready) {
      begin();
      return;
    }
    stream.defer();
    this.deferred.set(stream, begin);
    if (!this.readyPoll) {
      this.readyPoll = setInterval(() => this.startDeferred(), READY_POLL_MS);
      this.readyPoll.unref();
    }
  }

  /** Ends every stream (at shutdown) and stops listening to the view. */
  close(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.readyPoll);
    this.unsubscribe();
    for (const stream of this.fleet) stream.close();
    for (const group of this.byChannel.values()) for (const stream of group) stream.close();
  }

  /** Replays what the stream owes its client from the loaded view, then marks it synced. */
  private begin(stream: SseStream, channel: string | undefined, start: StreamStart): void {
    const done = () => syncedEvent(this.view);
    let changes: readonly MissedChange[] | undefined;
    let reload: string | undefined;
    if (start.lastEventId !== undefined) {
      const revision = /^\d{1,16}$/.test(start.lastEventId) ? Number(start.lastEventId) : undefined;
      changes = revision === undefined ? undefined : this.view.changesSince(revision, channel);
      if (changes === undefined) {
        reload =
          revision === undefined
            ? "Last-Event-ID is not an id this API sent"
            : "this instance cannot list every change since that id (another deployment's id, or too long ago)";
      }
    }
    if (changes === undefined) {
      // A new stream, or one that must start over: the rocket's own stream and snapshots start with the current state.
      if (channel !== undefined) {
        const entry = this.view.get(channel);
        changes = entry ? [{ channel, revision: entry.revision, removed: false }] : [];
      } else {
        changes = start.snapshot ? this.view.snapshot() : [];
      }
    }
    const events = replay(this.view, changes);
    if (reload === undefined) {
      stream.catchUp(events, done);
      return;
    }
    const withReload = (function* () {
      yield reloadEvent(reload);
      for (let next = events.next(); !next.done; next = events.next()) yield next.value;
    })();
    stream.catchUp(withReload, done);
  }

  private startDeferred(): void {
    if (!this.view.ready) return;
    clearInterval(this.readyPoll);
    this.readyPoll = undefined;
    const waiting = [...this.deferred.values()];
    this.deferred.clear();
    for (const begin of waiting) begin();
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
