// Small DOM and formatting helpers: elements built from plain calls (text is
// always set as text, never parsed as HTML), and the ways numbers and times
// are shown everywhere in the console.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/** An element with attributes (`on<event>` ones become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    // Through the CSSOM: the API's Content-Security-Policy refuses style attributes.
    else if (name === "style") el.style.cssText = String(value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: (SVGElement | string)[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const c of children) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function formatNumber(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : integer.format(n);
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** An RFC 3339 time in the viewer's local time, to the millisecond; the text as given when it does not parse. */
export function formatTime(rfc3339: string): string {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) return rfc3339;
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** For dense columns: the time of day when it is today, else the date and time to the second. */
export function formatClock(rfc3339: string): string {
  const full = formatTime(rfc3339);
  if (full.length < 23) return full;
  return full.slice(0, 10) === formatTime(new Date().toISOString()).slice(0, 10) ? full.slice(11) : full.slice(0, 19);
}

/** `3, 5–7` for ranges; at most `limit` runs, then how many more numbers. */
export function formatRanges(ranges: readonly { from: number; to: number }[], limit = 8): string {
  const shown = ranges.slice(0, limit).map((r) => (r.from === r.to ? formatNumber(r.from) : `${formatNumber(r.from)}–${formatNumber(r.to)}`));
  const rest = ranges.slice(limit).reduce((sum, r) => sum + (r.to - r.from + 1), 0);
  return rest > 0 ? `${shown.join(", ")} and ${formatNumber(rest)} more` : shown.join(", ");
}

export function countOf(ranges: readonly { from: number; to: number }[]): number {
  return ranges.reduce((sum, r) => sum + (r.to - r.from + 1), 0);
}

let flashColor: string | undefined;

/**
 * A short highlight on an element that changed (rows, cards). Runs as a Web
 * Animation: restarting it costs no layout, so a burst of changes stays cheap.
 */
export function flash(el: Element): void {
  flashColor ??= getComputedStyle(document.documentElement).getPropertyValue("--flash").trim() || "#fff3bf";
  for (const a of el.getAnimations()) if (a.id === "flash") a.cancel();
  const animation = el.animate([{ backgroundColor: flashColor }, { backgroundColor: "transparent" }], { duration: 1200, easing: "ease-out" });
  animation.id = "flash";
}

/** Calls `fn` at most once per `intervalMs`, the first time after `firstMs`; later calls in between are merged. */
export function throttle(fn: () => void, firstMs: number, intervalMs: number): { schedule(): void; cancel(): void } {
  let timer: number | undefined;
  let last = 0;
  return {
    schedule() {
      if (timer !== undefined) return;
      const wait = Math.max(firstMs, last + intervalMs - Date.now());
      timer = window.setTimeout(() => {
        timer = undefined;
        last = Date.now();
        fn();
      }, wait);
    },
    cancel() {
      window.clearTimeout(timer);
      timer = undefined;
    },
  };
}
