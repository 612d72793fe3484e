// The fleet page: counts, filters and a sorted table of one page of rockets.
//
// Guarantees:
// - Bounded however large the fleet: the table shows one page (PAGE_SIZE
//   rows) read from the list API, which sorts, filters and pages on the
//   server (keyset cursors); the DOM never holds more than that page.
// - Live: a change to a rocket on the page updates and flashes its row at
//   once; every change also schedules a re-read of the page and the counts
//   (throttled), so rockets that enter, leave or move within the order show
//   up within about a second.
// - The sort and filters are the list API's own parameters and live in the
//   URL (#/?sort=-speed&status=exploded), so a view can be shared.

import { api, ApiError, type ListParams, type Rocket, type Summary } from "./api.js";
import { flash, formatClock, formatNumber, h, throttle } from "./dom.js";

const PAGE_SIZE = 50;

interface Column {
  key: string;
  label: string;
  /** The list API's sort key, when the column can be sorted by. */
  sort?: string;
  /** Hidden on narrow screens. */
  optional?: boolean;
  /** Shown on wide screens only. */
  wide?: boolean;
  numeric?: boolean;
  cell(r: Rocket): Node | string;
}

const statusBadge = (r: Rocket) => h("span", { class: `badge ${r.status}` }, r.status);

const COLUMNS: Column[] = [
  {
    key: "channel",
    label: "Channel",
    sort: "channel",
    cell: (r) => h("a", { href: `#/rockets/${encodeURIComponent(r.channel)}`, class: "mono", title: r.channel }, r.channel.slice(0, 8)),
  },
  { key: "type", label: "Type", sort: "type", cell: (r) => r.type },
  { key: "mission", label: "Mission", sort: "mission", cell: (r) => r.mission },
  { key: "status", label: "Status", sort: "status", cell: statusBadge },
  { key: "speed", label: "Speed", sort: "speed", numeric: true, cell: (r) => formatNumber(r.speed) },
  { key: "explosionReason", label: "Explosion reason", optional: true, cell: (r) => r.explosionReason ?? "" },
  { key: "launchedAt", label: "Launched", sort: "launchedAt", optional: true, wide: true, cell: (r) => h("span", { title: r.launchedAt }, formatClock(r.launchedAt)) },
  { key: "updatedAt", label: "Updated", sort: "updatedAt", cell: (r) => h("span", { title: r.updatedAt }, formatClock(r.updatedAt)) },
  { key: "lastMessageNumber", label: "Last #", numeric: true, optional: true, cell: (r) => formatNumber(r.lastMessageNumber) },
  {
    key: "pendingMessages",
    label: "Pending",
    numeric: true,
    cell: (r) => (r.pendingMessages > 0 ? h("span", { class: "badge gap", title: "messages waiting behind a gap" }, formatNumber(r.pendingMessages)) : "0"),
  },
];

interface Filters {
  sort: string;
  status?: string;
  type?: string;
  mission?: string;
}

function filtersFromHash(): Filters {
  const q = new URLSearchParams(location.hash.split("?")[1] ?? "");
  return { sort: q.get("sort") ?? "-updatedAt", status: q.get("status") ?? undefined, type: q.get("type") ?? undefined, mission: q.get("mission") ?? undefined };
}

function hashOf(f: Filters): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  return `#/?${q.toString()}`;
}

const sameRocket = (a: Rocket, b: Rocket) => (Object.keys(a) as (keyof Rocket)[]).every((k) => a[k] === b[k]);

export class FleetPage {
  readonly element: HTMLElement;
  private filters = filtersFromHash();
  /** Cursors of the pages before the one shown; the last is the current page's own (undefined: first page). */
  private cursors: (string | undefined)[] = [undefined];
  private nextCursor: string | null = null;
  private rows = new Map<string, { tr: HTMLTableRowElement; rocket: Rocket }>();
  /** Live changes to shown rows, applied at the next animation frame. */
  private readonly changed = new Map<string, Rocket>();
  private frame: number | undefined;
  private summary: Summary | undefined;
  private total = 0;
  private loading: AbortController | undefined;
  private readonly refresh = throttle(() => void this.load(true), 150, 1000);
  private readonly tbody = h("tbody");
  private readonly thead = h("thead");
  private readonly cards = h("div", { class: "cards" });
  private readonly breakdown = h("div", { class: "breakdown" });
  private readonly controls = h("div", { class: "controls" });
  private readonly pager = h("div", { class: "pager" });
  private readonly notice = h("div", { class: "notice", hidden: true });

  constructor() {
    this.element = h(
      "main",
      { class: "fleet" },
      this.cards,
      this.breakdown,
      h(
        "section",
        { class: "panel" },
        this.controls,
        this.notice,
        h("div", { class: "table-wrap" }, h("table", { class: "rockets", "data-testid": "fleet-table" }, this.thead, this.tbody)),
        this.pager,
      ),
    );
    this.renderHead();
    void this.load();
  }

  destroy(): void {
    this.refresh.cancel();
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.loading?.abort();
  }

  /**
   * A live change: its row (if shown) is updated at the next frame, and the
   * page and counts are re-read soon. Changes between two frames are merged
   * (latest per rocket), so a burst of thousands costs one render.
   */
  rocketChanged(rocket: Rocket): void {
    if (this.rows.has(rocket.channel)) {
      this.changed.set(rocket.channel, rocket);
      this.frame ??= requestAnimationFrame(() => this.applyChanges());
    }
    this.refresh.schedule();
  }

  private applyChanges(): void {
    this.frame = undefined;
    for (const [channel, rocket] of this.changed) {
      const row = this.rows.get(channel);
      if (!row || sameRocket(row.rocket, rocket)) continue;
      this.fillRow(row.tr, rocket);
      row.rocket = rocket;
      flash(row.tr);
    }
    this.changed.clear();
  }

  rocketRemoved(): void {
    this.refresh.schedule();
  }

  /** After a reconnect or a reload request: everything shown may be stale. */
  reread(): void {
    void this.load(true);
  }

  private params(): ListParams {
    const cursor = this.cursors[this.cursors.length - 1];
    return { ...this.filters, limit: PAGE_SIZE, cursor };
  }

  /** Reads the page and the counts; `live` when prompted by changes (rows that changed then flash). */
  private async load(live = false): Promise<void> {
    this.loading?.abort();
    const controller = new AbortController();
    this.loading = controller;
    try {
      const [page, summary] = await Promise.all([api.list(this.params(), controller.signal), api.summary(controller.signal)]);
      if (controller.signal.aborted) return;
      this.summary = summary;
      this.total = page.total;
      this.nextCursor = page.nextCursor;
      this.showNotice(undefined);
      this.renderCards();
      this.renderControls();
      this.renderRows(page.rockets, live);
      this.renderPager(page.rockets.length);
    } catch (err) {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status === 400 && this.cursors.length > 1) {
        // A cursor made for another order: start over at the first page.
        this.cursors = [undefined];
        void this.load();
        return;
      }
      this.showNotice(err instanceof ApiError && err.status === 503 ? "The API is still loading the fleet; retrying…" : "Could not read the fleet; retrying…");
      window.setTimeout(() => this.refresh.schedule(), 1000);
    }
  }

  private showNotice(text: string | undefined): void {
    this.notice.hidden = text === undefined;
    this.notice.textContent = text ?? "";
  }

  private setFilters(next: Partial<Filters>): void {
    this.filters = { ...this.filters, ...next };
    this.cursors = [undefined];
    history.replaceState(null, "", hashOf(this.filters));
    this.renderHead();
    void this.load();
  }

  private renderCards(): void {
    const s = this.summary!;
    const card = (label: string, value: string, cls = "", onclick?: () => void) =>
      h(
        "button",
        { class: `card ${cls}`, type: "button", disabled: onclick === undefined, onclick: onclick ? () => onclick() : undefined, "data-testid": `card-${cls || label}` },
        h("span", { class: "card-value" }, value),
        h("span", { class: "card-label" }, label),
      );
    const old = new Map([...this.cards.querySelectorAll<HTMLElement>(".card")].map((c) => [c.dataset["testid"], c.querySelector(".card-value")?.textContent]));
    this.cards.replaceChildren(
      card("Rockets", formatNumber(s.total), "total", () => this.setFilters({ status: undefined, type: undefined, mission: undefined })),
      card("Launched", formatNumber(s.byStatus["launched"] ?? 0), "launched", () => this.setFilters({ status: "launched" })),
      card("Exploded", formatNumber(s.byStatus["exploded"] ?? 0), "exploded", () => this.setFilters({ status: "exploded" })),
      card("Waiting on gaps", formatNumber(s.waitingOnGaps), "gaps"),
      card("Average speed", s.averageSpeed === null ? "—" : formatNumber(s.averageSpeed), "speed"),
    );
    for (const c of this.cards.querySelectorAll<HTMLElement>(".card")) {
      const before = old.get(c.dataset["testid"]);
      if (before !== undefined && before !== c.querySelector(".card-value")?.textContent) flash(c);
    }
    this.breakdown.replaceChildren(
      this.bars("By type", s.byType, s.otherTypes, s.distinctTypes, "type"),
      this.bars("By mission", s.byMission, s.otherMissions, s.distinctMissions, "mission"),
    );
  }

  /**
   * The largest groups as bars; a click filters by that value. `unlisted`
   * rockets in groups the summary left out, of `distinct` groups in all.
   */
  private bars(title: string, counts: Record<string, number>, unlisted: number, distinct: number, field: "type" | "mission"): HTMLElement {
    const entries = Object.entries(counts).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
    const shown = entries.slice(0, 6);
    const rest = entries.slice(6).reduce((sum, [, n]) => sum + n, 0) + unlisted;
    const more = distinct - shown.length;
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const selected = this.filters[field];
    return h(
      "section",
      { class: "panel bars" },
      h("h2", {}, title),
      ...shown.map(([name, n]) =>
        h(
          "button",
          {
            type: "button",
            class: `bar${selected === name ? " selected" : ""}`,
            title: `Show only ${name}`,
            onclick: () => this.setFilters({ [field]: selected === name ? undefined : name }),
          },
          h("span", { class: "bar-name" }, name),
          h("span", { class: "bar-track" }, h("span", { class: "bar-fill", style: `width:${((n / max) * 100).toFixed(1)}%` })),
          h("span", { class: "bar-count" }, formatNumber(n)),
        ),
      ),
      rest > 0
        ? h(
            "div",
            { class: "bar-rest" },
            `and ${formatNumber(more)} more ${field}${more === 1 ? "" : "s"} with ${formatNumber(rest)} ${rest === 1 ? "rocket" : "rockets"}`,
          )
        : null,
      entries.length === 0 ? h("div", { class: "bar-rest" }, "none yet") : null,
    );
  }

  private renderControls(): void {
    const s = this.summary!;
    const select = (name: keyof Filters, label: string, values: string[]) => {
      const current = this.filters[name];
      const options = current && !values.includes(current) ? [current, ...values] : values;
      return h(
        "label",
        { class: "field" },
        h("span", {}, label),
        h(
          "select",
          { name, "data-testid": `filter-${name}`, onchange: (e: Event) => this.setFilters({ [name]: (e.target as HTMLSelectElement).value || undefined }) },
          h("option", { value: "" }, "All"),
          ...options.map((v) => h("option", { value: v, selected: v === current }, v)),
        ),
      );
    };
    const sortKeys = COLUMNS.filter((c) => c.sort);
    const descending = this.filters.sort.startsWith("-");
    const key = descending ? this.filters.sort.slice(1) : this.filters.sort;
    this.controls.replaceChildren(
      select("status", "Status", ["launched", "exploded"]),
      select("type", "Type", Object.keys(s.byType).sort()),
      select("mission", "Mission", Object.keys(s.byMission).sort()),
      h(
        "label",
        { class: "field" },
        h("span", {}, "Sort by"),
        h(
          "select",
          { "data-testid": "sort", onchange: (e: Event) => this.setFilters({ sort: (e.target as HTMLSelectElement).value }) },
          ...sortKeys.flatMap((c) => [
            h("option", { value: c.sort!, selected: !descending && key === c.sort }, `${c.label} ↑`),
            h("option", { value: `-${c.sort!}`, selected: descending && key === c.sort }, `${c.label} ↓`),
          ]),
        ),
      ),
      h("span", { class: "matches", "data-testid": "matches" }, `${formatNumber(this.total)} ${this.total === 1 ? "rocket" : "rockets"}`),
    );
  }

  private renderHead(): void {
    const descending = this.filters.sort.startsWith("-");
    const key = descending ? this.filters.sort.slice(1) : this.filters.sort;
    this.thead.replaceChildren(
      h(
        "tr",
        {},
        ...COLUMNS.map((c) => {
          const active = c.sort !== undefined && c.sort === key;
          const cls = [c.numeric ? "num" : "", c.optional ? "optional" : "", c.wide ? "wide" : "", c.sort ? "sortable" : "", active ? "active" : ""].join(" ").trim();
          if (!c.sort) return h("th", { class: cls, scope: "col" }, c.label);
          const next = active && !descending ? `-${c.sort}` : c.sort;
          return h(
            "th",
            { class: cls, scope: "col", "aria-sort": active ? (descending ? "descending" : "ascending") : "none" },
            h("button", { type: "button", "data-sort": c.sort, onclick: () => this.setFilters({ sort: next }) }, c.label, h("span", { class: "arrow" }, active ? (descending ? " ↓" : " ↑") : "")),
          );
        }),
      ),
    );
  }

  private fillRow(tr: HTMLTableRowElement, r: Rocket): void {
    tr.replaceChildren(...COLUMNS.map((c) => h("td", { class: [`col-${c.key}`, c.numeric ? "num" : "", c.optional ? "optional" : "", c.wide ? "wide" : ""].join(" ").trim() }, c.cell(r))));
    tr.className = r.status === "exploded" ? "exploded" : "";
  }

  /** Keyed by channel: kept rows keep their element (a flash survives a re-read), changed ones flash. */
  private renderRows(rockets: Rocket[], live: boolean): void {
    const next = new Map<string, { tr: HTMLTableRowElement; rocket: Rocket }>();
    for (const r of rockets) {
      const kept = this.rows.get(r.channel);
      if (kept) {
        if (!sameRocket(kept.rocket, r)) {
          this.fillRow(kept.tr, r);
          if (live) flash(kept.tr);
        }
        next.set(r.channel, { tr: kept.tr, rocket: r });
      } else {
        const tr = h("tr", { "data-channel": r.channel });
        this.fillRow(tr, r);
        if (live) flash(tr);
        next.set(r.channel, { tr, rocket: r });
      }
    }
    this.rows = next;
    if (rockets.length === 0) {
      this.tbody.replaceChildren(
        h(
          "tr",
          { class: "empty" },
          h(
            "td",
            { colspan: COLUMNS.length },
            this.summary?.total === 0 ? "No rockets yet. Send some: npm run launch -- http://localhost:8088/messages" : "No rocket matches these filters.",
          ),
        ),
      );
      return;
    }
    this.tbody.replaceChildren(...[...next.values()].map((r) => r.tr));
  }

  private renderPager(shown: number): void {
    const index = this.cursors.length - 1;
    const from = index * PAGE_SIZE + (shown > 0 ? 1 : 0);
    const to = index * PAGE_SIZE + shown;
    this.pager.replaceChildren(
      h(
        "button",
        {
          type: "button",
          disabled: index === 0,
          onclick: () => {
            this.cursors.pop();
            void this.load();
          },
        },
        "‹ Previous",
      ),
      h("span", { "data-testid": "page-range" }, `${formatNumber(from)}–${formatNumber(to)} of ${formatNumber(this.total)}`),
      h(
        "button",
        {
          type: "button",
          disabled: this.nextCursor === null,
          onclick: () => {
            if (this.nextCursor === null) return;
            this.cursors.push(this.nextCursor);
            void this.load();
          },
        },
        "Next ›",
      ),
    );
  }
}

