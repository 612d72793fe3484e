// The operator console: one page, served by the query API at `/`, reading
// only from that same API (no other host, no CDN; the API's
// Content-Security-Policy enforces it). The fleet stream stays open while
// the console runs and feeds whichever page is shown; the connection pill
// in the header says whether what you see is live. Before anything is
// read, the API must take this session's key: without one (or with one it
// refuses) the sign-in form asks for it (login.ts); a key refused later
// brings the form back.

import "./console.css";
import { FleetPage } from "./fleet-page.js";
import { h } from "./dom.js";
import { signIn } from "./login.js";
import { whenKeyRefused } from "./session.js";
import { LiveStream, type ConnectionState } from "./live.js";
import { RocketPage } from "./rocket-page.js";

/** What the header's pill shows: the fleet stream's state, or that nothing is read until a key is given. */
type PillState = ConnectionState | "signed-out";

const LABELS: Record<PillState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  "signed-out": "Not signed in",
};

const pill = h("span", { class: "connection connecting", "data-testid": "connection", "data-state": "connecting", role: "status" }, LABELS.connecting);
const stale = h("div", { class: "stale-banner", hidden: true, role: "status" });
const outlet = h("div", { class: "outlet" });

document.body.replaceChildren(
  h(
    "header",
    { class: "top" },
    h("a", { href: "#/", class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Rockets"),
    h("nav", {}, h("a", { href: "/docs" }, "API docs")),
    pill,
  ),
  stale,
  outlet,
);

let page: FleetPage | RocketPage | undefined;

function route(): void {
  page?.destroy();
  const match = /^#\/rockets\/([^?]+)/.exec(location.hash);
  page = match ? new RocketPage(decodeURIComponent(match[1]!)) : new FleetPage();
  document.title = match ? `Rocket ${decodeURIComponent(match[1]!).slice(0, 8)} · Rockets` : "Fleet · Rockets";
  outlet.replaceChildren(page.element);
  window.scrollTo(0, 0);
}

const live = new LiveStream("/rockets/stream", {
  rocket: (r) => page?.rocketChanged(r),
  removed: () => (page instanceof FleetPage ? page.rocketRemoved() : undefined),
  synced: (resumed) => {
    if (!resumed) return;
    if (page instanceof FleetPage) page.reread();
    else page?.reload();
  },
  reload: () => (page instanceof FleetPage ? page.reread() : page?.reload()),
  state: (state) => showState(state),
});

function showState(state: PillState): void {
  pill.className = `connection ${state}`;
  pill.dataset["state"] = state;
  pill.textContent = LABELS[state];
  stale.hidden = state === "live" || state === "connecting" || state === "signed-out";
    stale.textContent =
      state === "offline"
        ? "Offline: showing what was last received. The console reconnects by itself when the API answers again."
        : "Connection to the API lost: showing what was last received while reconnecting.";
}

let running = false;

async function run(refused = false): Promise<void> {
  // While the form shows nothing is being read: the pill says so rather than "Connecting…".
  await signIn(outlet, refused, () => showState("signed-out"));
  showState("connecting");
  running = true;
  route();
  live.start();
}

whenKeyRefused(() => {
  if (!running) return;
  running = false;
  live.stop();
  page?.destroy();
  page = undefined;
  void run(true);
});

window.addEventListener("hashchange", () => {
  if (running) route();
});
void run();
