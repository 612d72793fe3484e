// One rocket's page (#/rockets/<channel>): its state, the gap it waits on,
// its speed over time, and every message the events stream holds for it in
// messageNumber order with when it was received and what it did.
//
// Guarantees:
// - What each message did comes from the API, which folds the domain's own
//   sequencing over the stored history; the page computes nothing of it.
// - When the stream no longer holds messages the rocket applied (retention),
//   the page says which, and shows no outcome or speed it cannot know.
// - Bounded: the table shows HISTORY_PAGE rows at a time, with the numbers
//   the rocket waits for shown in place; live changes update the state at
//   once and re-read the history at most every couple of seconds.

import { api, ApiError, type HistoryEvent, type NumberRange, type Rocket, type RocketHistory } from "./api.js";
import { countOf, flash, formatNumber, formatRanges, formatTime, h, svg, throttle } from "./dom.js";

const HISTORY_PAGE = 200;
/** Pages of /events read at most (5,000 messages each). */
const MAX_HISTORY_PAGES = 40;

function describe(e: HistoryEvent): string {
  const m = e.message;
  switch (e.messageType) {
    case "RocketLaunched":
      return `Launched: ${String(m["type"])} on ${String(m["mission"])} at ${formatNumber(Number(m["launchSpeed"]))}`;
    case "RocketSpeedIncreased":
      return `Speed +${formatNumber(Number(m["by"]))}`;
    case "RocketSpeedDecreased":
      return `Speed −${formatNumber(Number(m["by"]))}`;
    case "RocketExploded":
      return `Exploded: ${String(m["reason"])}`;
    case "RocketMissionChanged":
      return `Mission → ${String(m["newMission"])}`;
    default:
      return e.messageType;
  }
}

type Row = { kind: "event"; event: HistoryEvent } | { kind: "gap"; range: NumberRange; why: "waiting" | "lost" };

/** Events in number order with the ranges the rocket waits for (or the stream lost) in their place. */
function rowsOf(history: RocketHistory, events: HistoryEvent[]): Row[] {
  const gaps: Row[] = [
    ...history.waitingFor.map((range): Row => ({ kind: "gap", range, why: "waiting" })),
    ...history.missing.map((range): Row => ({ kind: "gap", range, why: "lost" })),
  ];
  const rows: Row[] = [...events.map((event): Row => ({ kind: "event", event })), ...gaps];
  const at = (r: Row) => (r.kind === "event" ? r.event.messageNumber : r.range.from);
  return rows.sort((a, b) => at(a) - at(b) || (a.kind === "gap" ? -1 : 1) || 0);
}

export class RocketPage {
  readonly element: HTMLElement;
  private rocket: Rocket | undefined;
  private latest: Rocket | undefined;
  private frame: number | undefined;
  private history: RocketHistory | undefined;
  private events: HistoryEvent[] = [];
  private rows: Row[] = [];
  private page = 0;
  private aborter = new AbortController();
  private readonly reread = throttle(() => void this.loadHistory(), 300, 2000);
  private readonly head = h("header", { class: "rocket-head" });
  private readonly state = h("div", { class: "cards" });
  private readonly gap = h("section", { class: "panel gap-panel", "data-testid": "gap" });
  private readonly chart = h("section", { class: "panel chart" });
  private readonly table = h("section", { class: "panel history" });
  private readonly notice = h("div", { class: "notice", hidden: true });

  private readonly onResize = throttle(() => this.renderChart(), 100, 250);

  constructor(private readonly channel: string) {
    this.element = h("main", { class: "rocket-page" }, this.head, this.notice, this.state, this.gap, this.chart, this.table);
    this.renderHead();
    window.addEventListener("resize", this.onResize.schedule);
    void this.load();
  }

  destroy(): void {
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.reread.cancel();
    this.onResize.cancel();
    window.removeEventListener("resize", this.onResize.schedule);
    this.aborter.abort();
  }

  /** This rocket's live changes: shown at the next frame (a burst is merged), the history re-read soon after. */
  rocketChanged(rocket: Rocket): void {
    if (rocket.channel !== this.channel) return;
    this.latest = rocket;
    this.frame ??= requestAnimationFrame(() => {
      this.frame = undefined;
      const before = this.rocket;
      this.rocket = this.latest;
      this.renderHead();
      this.renderState(before);
    });
    this.reread.schedule();
  }

  reload(): void {
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      this.rocket = await api.rocket(this.channel, this.aborter.signal);
    } catch (err) {
      if (this.aborter.signal.aborted) return;
      if (!(err instanceof ApiError && err.status === 404)) this.showNotice("Could not read this rocket; retrying…");
      this.rocket = undefined;
    }
    this.renderHead();
    this.renderState(undefined);
    await this.loadHistory();
  }

  private async loadHistory(): Promise<void> {
    try {
      let history = await api.history(this.channel, undefined, this.aborter.signal);
      const events = [...history.events];
      for (let n = 1; history.nextCursor !== null && n < MAX_HISTORY_PAGES; n += 1) {
        history = await api.history(this.channel, history.nextCursor, this.aborter.signal);
        events.push(...history.events);
      }
      this.history = history;
      this.events = events;
      this.rows = rowsOf(history, events);
      this.showNotice(undefined);
    } catch (err) {
      if (this.aborter.signal.aborted) return;
      if (err instanceof ApiError && err.status === 404) {
        this.history = undefined;
        this.events = [];
        this.rows = [];
        this.showNotice(`No rocket with channel ${this.channel} is known, and the events stream holds no message for it.`);
      } else {
        this.showNotice(err instanceof ApiError ? `History unavailable: ${err.message}` : "History unavailable; retrying…");
        window.setTimeout(() => this.reread.schedule(), 2000);
      }
    }
    this.renderGap();
    this.renderChart();
    this.renderTable();
  }

  private showNotice(text: string | undefined): void {
    this.notice.hidden = text === undefined;
    this.notice.textContent = text ?? "";
  }

  private renderHead(): void {
    const r = this.rocket;
    this.head.replaceChildren(
      h("a", { href: "#/", class: "back" }, "← Fleet"),
      h(
        "div",
        { class: "title" },
        h("h1", {}, r ? `${r.type} · ${r.mission}` : "Rocket"),
        r ? h("span", { class: `badge ${r.status}`, "data-testid": "rocket-status" }, r.status) : null,
      ),
      h("div", { class: "mono channel-id", title: "channel" }, this.channel),
    );
  }

  private renderState(before: Rocket | undefined): void {
    const r = this.rocket;
    if (!r) {
      this.state.replaceChildren(h("div", { class: "card" }, h("span", { class: "card-value" }, "—"), h("span", { class: "card-label" }, "Not launched (yet)")));
      return;
    }
    const card = (key: keyof Rocket, label: string, value: string, title?: string, cls = "") => {
      const el = h(
        "div",
        { class: `card ${cls}`.trim(), "data-testid": `state-${key}`, title },
        h("span", { class: "card-value" }, value),
        h("span", { class: "card-label" }, label),
      );
      if (before && before[key] !== r[key]) flash(el);
      return el;
    };
    this.state.replaceChildren(
      card("speed", "Speed", formatNumber(r.speed)),
      card("status", r.status === "exploded" ? "Exploded" : "Status", r.status === "exploded" ? (r.explosionReason ?? "exploded") : "flying", undefined, r.status === "exploded" ? "text" : ""),
      card("lastMessageNumber", "Last applied #", formatNumber(r.lastMessageNumber)),
      card("pendingMessages", "Waiting behind a gap", formatNumber(r.pendingMessages), r.gap ? `gap open since ${r.gap.since}` : undefined),
      ...(r.skipped && r.skipped.length > 0
        ? [
            card(
              "skipped",
              "Given up (gap policy)",
              r.skipped.map((s) => (s.from === s.to ? `#${formatNumber(s.from)}` : `#${formatNumber(s.from)}–${formatNumber(s.to)}`)).join(", "),
              r.skipped.map((s) => `${s.from}..${s.to} at ${s.at}`).join("; "),
              "text skipped",
            ),
          ]
        : []),
      card("launchedAt", `Launched · ${formatTime(r.launchedAt).slice(0, 10)}`, formatTime(r.launchedAt).slice(11), r.launchedAt, "time"),
      card("updatedAt", `Updated · ${formatTime(r.updatedAt).slice(0, 10)}`, formatTime(r.updatedAt).slice(11), r.updatedAt, "time"),
    );
  }

  private renderGap(): void {
    const hist = this.history;
    if (!hist) {
      this.gap.replaceChildren();
      this.gap.hidden = true;
      return;
    }
    this.gap.hidden = false;
    const parts: Node[] = [];
    if (hist.waitingFor.length > 0) {
      const n = countOf(hist.waitingFor);
      parts.push(
        h(
          "p",
          { class: "gap-waiting" },
          h("strong", {}, `Waiting for ${formatNumber(n)} ${n === 1 ? "message" : "messages"}: `),
          h("span", { class: "mono", "data-testid": "gap-numbers" }, formatRanges(hist.waitingFor)),
          `. ${formatNumber(hist.pendingMessages)} later ${hist.pendingMessages === 1 ? "message waits" : "messages wait"} behind ${n === 1 ? "it" : "them"}.`,
        ),
      );
    } else {
      parts.push(h("p", { class: "gap-none" }, "No gap: every message received so far is applied."));
    }
    if (!hist.complete) {
      parts.push(
        h(
          "p",
          { class: "warning", "data-testid": "history-incomplete" },
          h("strong", {}, "History incomplete. "),
          `The events stream no longer holds message${countOf(hist.missing) === 1 ? "" : "s"} ${formatRanges(hist.missing)} (retention: the oldest message it holds was received ${hist.heldSince ? formatTime(hist.heldSince) : "—"}). `,
          "What each message did and the speed after it cannot be known, so they are not shown.",
        ),
      );
    }
    if (hist.rejected > 0) parts.push(h("p", { class: "muted" }, `${formatNumber(hist.rejected)} stored message(s) on this rocket's subject were not valid and changed nothing.`));
    this.gap.replaceChildren(h("h2", {}, "Sequencing"), ...parts);
  }

  private renderChart(): void {
    const seen = new Set<number>();
    const points: { t: number; n: number; speed: number; e: HistoryEvent }[] = [];
    for (const e of this.events) {
      if (e.speedAfter === null || seen.has(e.messageNumber)) continue;
      seen.add(e.messageNumber);
      points.push({ t: Date.parse(e.messageTime), n: e.messageNumber, speed: e.speedAfter, e });
    }
    if (points.length < 2) {
      const why =
        this.history && !this.history.complete
          ? "Unknown: the events stream no longer holds the start of this history."
          : points.length === 0
            ? "No applied message with a known speed yet."
            : "One point so far.";
      this.chart.replaceChildren(h("h2", {}, "Speed over time"), h("p", { class: "muted" }, why));
      return;
    }
    // The speed changes in message-number order. Plotted against the messages' own times when those
    // follow the numbers (as a sender's clock does); against the numbers when they do not.
    points.sort((a, b) => a.n - b.n);
    const byTime = points.every((p, i) => !Number.isNaN(p.t) && (i === 0 || p.t >= points[i - 1]!.t));
    if (!byTime) for (const p of points) p.t = p.n;
    // Drawn at the panel's own width, so that text keeps its size on a narrow screen.
    const W = Math.max(280, Math.min(1400, (this.chart.clientWidth || 992) - 32));
    const H = W < 600 ? 180 : 240;
    const pad = { l: 56, r: 12, t: 12, b: 28 };
    const t0 = points[0]!.t;
    const t1 = points[points.length - 1]!.t;
    const vmax = Math.max(1, ...points.map((p) => p.speed));
    const x = (t: number) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r);
    const y = (v: number) => H - pad.b - (v / vmax) * (H - pad.t - pad.b);
    // Steps: the speed holds until the next message changes it.
    const line = points
      .map((p, i) => {
        const here = `${x(p.t).toFixed(1)},${y(p.speed).toFixed(1)}`;
        const next = points[i + 1];
        return next ? `${here} ${x(next.t).toFixed(1)},${y(p.speed).toFixed(1)}` : here;
      })
      .join(" ");
    const area = `${x(t0).toFixed(1)},${y(0)} ${line} ${x(t1).toFixed(1)},${y(0)}`;
    const grid = [0, 0.5, 1].map((f) =>
      svg(
        "g",
        {},
        svg("line", { x1: pad.l, x2: W - pad.r, y1: y(vmax * f), y2: y(vmax * f), class: "grid" }),
        svg("text", { x: pad.l - 8, y: y(vmax * f) + 4, class: "axis", "text-anchor": "end" }, formatNumber(vmax * f)),
      ),
    );
    const explosion = points.find((p) => p.e.messageType === "RocketExploded");
    const graphic = svg(
      "svg",
      { viewBox: `0 0 ${W} ${H}`, class: "speed-chart", role: "img", "aria-label": "Speed over time", "data-testid": "speed-chart" },
      ...grid,
      svg("polygon", { points: area, class: "area" }),
      svg("polyline", { points: line, class: "line" }),
      svg("text", { x: pad.l, y: H - 8, class: "axis" }, byTime ? formatTime(points[0]!.e.messageTime).slice(W < 600 ? 11 : 0) : `#${points[0]!.n}`),
      svg(
        "text",
        { x: W - pad.r, y: H - 8, class: "axis", "text-anchor": "end" },
        byTime ? formatTime(points[points.length - 1]!.e.messageTime).slice(W < 600 ? 11 : 0) : `#${formatNumber(points[points.length - 1]!.n)}`,
      ),
      ...(explosion ? [svg("circle", { cx: x(explosion.t), cy: y(explosion.speed), r: 5, class: "explosion" }, svg("title", {}, describe(explosion.e)))] : []),
    );
    const readout = h(
      "div",
      { class: "readout muted" },
      `${formatNumber(points.length)} applied messages · peak ${formatNumber(vmax)}${byTime ? "" : " · by message number (the message times are out of order)"}`,
    );
    graphic.addEventListener("mousemove", (ev) => {
      const box = graphic.getBoundingClientRect();
      const t = t0 + (((ev.clientX - box.left) / box.width) * W - pad.l) / (W - pad.l - pad.r) * (t1 - t0);
      let best = points[0]!;
      for (const p of points) if (Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
      readout.textContent = `#${formatNumber(best.n)} · ${describe(best.e)} · speed ${formatNumber(best.speed)} · ${formatTime(best.e.messageTime)}`;
    });
    this.chart.replaceChildren(h("h2", {}, "Speed over time"), graphic, readout);
  }

  private renderTable(): void {
    const hist = this.history;
    if (!hist) {
      this.table.replaceChildren();
      return;
    }
    const pages = Math.max(1, Math.ceil(this.rows.length / HISTORY_PAGE));
    this.page = Math.min(this.page, pages - 1);
    const shown = this.rows.slice(this.page * HISTORY_PAGE, (this.page + 1) * HISTORY_PAGE);
    const body = h(
      "tbody",
      {},
      ...shown.map((row) => {
        if (row.kind === "gap") {
          const { from, to } = row.range;
          const numbers = from === to ? `#${formatNumber(from)}` : `#${formatNumber(from)}–${formatNumber(to)}`;
          return h(
            "tr",
            { class: `gap-row ${row.why}` },
            h("td", { class: "num col-n" }, numbers),
            h("td", { colspan: 6, class: "col-message" }, row.why === "waiting" ? "Not received yet: later messages wait for this" : "No longer held by the events stream (retention)"),
          );
        }
        const e = row.event;
        return h(
          "tr",
          { class: e.outcome ?? "unknown" },
          h("td", { class: "num col-n" }, `#${formatNumber(e.messageNumber)}`),
          h("td", { class: "col-message" }, describe(e)),
          h("td", { class: "optional", title: e.messageTime }, formatTime(e.messageTime)),
          h("td", { class: "col-received", title: `received ${e.receivedAt}` }, formatTime(e.receivedAt)),
          h("td", { class: "num optional" }, String(e.seq)),
          h("td", { class: "col-outcome" }, e.outcome ? h("span", { class: `badge ${e.outcome}` }, e.outcome) : h("span", { class: "muted" }, "unknown")),
          h("td", { class: "num col-speed" }, formatNumber(e.speedAfter)),
        );
      }),
    );
    const pager =
      pages > 1
        ? h(
            "div",
            { class: "pager" },
            h("button", { type: "button", disabled: this.page === 0, onclick: () => this.turn(-1) }, "‹ Earlier"),
            h("span", {}, `rows ${formatNumber(this.page * HISTORY_PAGE + 1)}–${formatNumber(this.page * HISTORY_PAGE + shown.length)} of ${formatNumber(this.rows.length)}`),
            h("button", { type: "button", disabled: this.page >= pages - 1, onclick: () => this.turn(1) }, "Later ›"),
          )
        : null;
    this.table.replaceChildren(
      h("h2", {}, `History · ${formatNumber(hist.total)} stored ${hist.total === 1 ? "message" : "messages"}`),
      h(
        "p",
        { class: "muted" },
        "In message-number order. Received is when the events stream stored it; the outcome is what the sequencer made of it, taking the messages in the order they arrived.",
      ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "history-table", "data-testid": "history-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { class: "num" }, "#"),
              h("th", {}, "Message"),
              h("th", { class: "optional" }, "Message time"),
              h("th", {}, "Received"),
              h("th", { class: "num optional" }, "Stream seq"),
              h("th", {}, "Outcome"),
              h("th", { class: "num" }, "Speed after"),
            ),
          ),
          body,
        ),
      ),
      pager ?? "",
    );
  }

  private turn(delta: number): void {
    this.page += delta;
    this.renderTable();
    this.table.scrollIntoView({ block: "start" });
  }
}
