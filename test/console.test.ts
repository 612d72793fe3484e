// The operator console in a real browser (Debian's chromium driven by
// playwright-core) against the real system: nats-server, ingest, sequencer
// and API as processes (AUTH=on, the default), with traffic from the load
// program. The console asks for a read key once per tab and refuses a wrong
// one. Also the history API over the real events stream.
//
// Screenshots go to $CONSOLE_SCREENSHOTS or a fresh temp folder (printed):
// look at them when the console changes.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { STREAM_NAME } from "../internal/nats/topology.js";
import { buildConsole } from "../scripts/build-console.mjs";
import { runLaunch, type LaunchResult } from "../scripts/launch/launch.js";
import { bearer, TEST_KEYS } from "../internal/testing/api-keys.js";
import { RocketsSystem } from "./rockets-system.js";

const CHROMIUM = process.env["CHROMIUM_BIN"] ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/** The page's document as the functions evaluated in the browser use it (this file is compiled without the DOM library). */
interface PageNode {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageNode | null;
}
declare const window: { scrollTo(x: number, y: number): void };
declare const document: {
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): ArrayLike<PageNode> & Iterable<PageNode>;
  documentElement: { scrollWidth: number; clientWidth: number };
};

const ROCKETS = 60;
const GAP_CHANNEL = "c0501e00-0000-4000-8000-00000000a9a9";

interface RocketJson {
  channel: string;
  type: string;
  speed: number;
  status: string;
  lastMessageNumber: number;
  pendingMessages: number;
}

/** Removes the stream's oldest messages, as retention does: everything stored before `keepFrom` (a stream sequence). */
async function trimStream(natsUrl: string, keepFrom: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    await (await jetstreamManager(nc)).streams.purge(STREAM_NAME, { seq: keepFrom });
  } finally {
    await nc.close();
  }
}

function message(channel: string, n: number, type: string, payload: object, time = new Date()) {
  return { metadata: { channel, messageNumber: n, messageTime: time.toISOString(), messageType: type }, message: payload };
}

describe("the operator console in a browser, against the real system", () => {
  let system: RocketsSystem;
  let launch: LaunchResult;
  let work: string;
  let shots: string;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];
  const foreign: string[] = [];

  const api = async <T>(path: string): Promise<T> => (await (await fetch(`${system.apiUrl}${path}`, { headers: bearer(TEST_KEYS.reader) })).json()) as T;
  const post = async (body: unknown) => {
    const res = await fetch(system.messagesUrl, { method: "POST", body: JSON.stringify(body), headers: bearer(TEST_KEYS.writer) });
    expect(res.status, await res.clone().text()).toBe(202);
  };
  const shot = async (name: string) => {
    // From the top: a full-page capture of a scrolled page draws the sticky header mid-page.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  const rowChannels = () => page.$$eval("[data-testid=fleet-table] tbody tr[data-channel]", (rows) => rows.map((r) => r.getAttribute("data-channel")!));

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "rockets-console-test-"));
    shots = process.env["CONSOLE_SCREENSHOTS"] ?? mkdtempSync(join(tmpdir(), "rockets-console-shots-"));
    console.info(`console screenshots: ${shots}`);
    const consoleDir = await buildConsole(join(work, "console"));
    system = await RocketsSystem.start({ env: { CONSOLE_DIR: consoleDir } });
    launch = await runLaunch({
      url: system.messagesUrl,
      maxMessages: 1500,
      rockets: ROCKETS,
      seed: 4242,
      duplicateRate: 0.05,
      reorderWindow: 40,
      concurrency: 4,
      verifyUrl: system.apiUrl,
      verifyTimeoutMs: 60_000,
      key: TEST_KEYS.operator,
    });
    system.expectExact(launch);
    // A rocket that waits on a gap: 4 never arrives (until a test sends it).
    await post(message(GAP_CHANNEL, 1, "RocketLaunched", { type: "Titan-IV", launchSpeed: 800, mission: "GEMINI" }));
    await post(message(GAP_CHANNEL, 2, "RocketSpeedIncreased", { by: 1200 }));
    await post(message(GAP_CHANNEL, 3, "RocketMissionChanged", { newMission: "SKYLAB" }));
    await post(message(GAP_CHANNEL, 6, "RocketSpeedDecreased", { by: 300 }));
    await post(message(GAP_CHANNEL, 5, "RocketSpeedIncreased", { by: 2500 }));
    const deadline = Date.now() + 10_000;
    while ((await api<RocketJson>(`/rockets/${GAP_CHANNEL}`)).pendingMessages !== 2) {
      if (Date.now() > deadline) throw new Error(`the gap rocket never showed its pending messages:\n${system.logs()}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    context = await chromium.launchPersistentContext(join(work, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1366, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
      if (!r.url().startsWith(system.apiUrl) && !r.url().startsWith("data:")) foreign.push(r.url());
    });
  }, 240_000);

  afterAll(async () => {
    await context?.close();
    await system?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("asks for a key before showing anything, says so for a key it does not know or one that cannot read, and keeps a read key for the tab", async () => {
    await page.goto(`${system.apiUrl}/`);
    await page.waitForSelector("[data-testid=login]");
    expect(await page.$("[data-testid=fleet-table]")).toBeNull();
    expect(await page.isHidden("[data-testid=login-error]")).toBe(true);
    // Nothing is read before a key is taken: the header says so, not "Connecting…".
    expect(await page.getAttribute("[data-testid=connection]", "data-state")).toBe("signed-out");
    expect(await page.textContent("[data-testid=connection]")).toBe("Not signed in");
    const signIn = async (key: string) => {
      await page.fill("[data-testid=login-key]", key);
      await page.click("[data-testid=login-submit]");
    };
    await signIn("not-a-key");
    await page.waitForSelector("[data-testid=login-error]:not([hidden])");
    expect(await page.textContent("[data-testid=login-error]")).toMatch(/does not know that key/);
    await signIn(TEST_KEYS.writer);
    await page.waitForFunction(() => /cannot read/.test(document.querySelector("[data-testid=login-error]")?.textContent ?? ""));
    expect(await page.$("[data-testid=fleet-table]")).toBeNull();
    expect(await page.getAttribute("[data-testid=connection]", "data-state")).toBe("signed-out");
    await shot("login-refused");
    await signIn(TEST_KEYS.reader);
    await page.waitForSelector("[data-testid=connection][data-state=live]", { timeout: 10_000 });
    await page.waitForSelector("[data-testid=fleet-table] tbody tr[data-channel]");
    // Asked once: a reload in the same tab goes straight to the fleet.
    await page.reload();
    await page.waitForSelector("[data-testid=connection][data-state=live]", { timeout: 10_000 });
    expect(await page.$("[data-testid=login]")).toBeNull();
    // The key is never in a URL the page requested, nor in its address.
    expect(page.url()).not.toContain(TEST_KEYS.reader);
    // The browser reports the refused answers of the sign-in as failed loads; nothing else may be said.
    const refused = errors.splice(0);
    expect(refused.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
  }, 60_000);

  it("loads with no console error and no request to another host, and shows every rocket live, one page at a time", async () => {
    await page.goto(`${system.apiUrl}/`);
    await page.waitForSelector("[data-testid=connection][data-state=live]", { timeout: 10_000 });
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]").length === n, 50);
    const total = ROCKETS + 1;
    expect(await page.textContent("[data-testid=card-total] .card-value")).toBe(String(total));
    expect(await page.textContent("[data-testid=page-range]")).toBe(`1–50 of ${total}`);
    // Server-side paging: the second page holds the rest, never the whole fleet at once.
    await page.click("text=Next ›");
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]").length === n, total - 50);
    const api2 = await api<{ rockets: RocketJson[] }>(`/rockets?sort=-updatedAt&limit=50`);
    const second = await rowChannels();
    expect(second.some((c) => api2.rockets.some((r) => r.channel === c))).toBe(false);
    await page.click("text=‹ Previous");
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]").length === 50);
    await shot("fleet");
    // The README's picture (docs/console.png): one laptop screen.
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.screenshot({ path: join(shots, "readme.png") });
    await page.setViewportSize({ width: 1366, height: 900 });
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
  }, 60_000);

  it("shows a POSTed change within a second, without a reload", async () => {
    await page.goto(`${system.apiUrl}/`);
    await page.waitForSelector("[data-testid=connection][data-state=live]");
    await page.waitForSelector("tr[data-channel]");
    const { rockets } = await api<{ rockets: RocketJson[] }>("/rockets?status=launched&sort=-updatedAt&limit=50");
    const target = rockets.find((r) => r.pendingMessages === 0)!;
    const shown = await rowChannels();
    expect(shown).toContain(target.channel);
    const speed = target.speed + 12_345;
    const started = Date.now();
    await post(message(target.channel, target.lastMessageNumber + 1, "RocketSpeedIncreased", { by: 12_345 }));
    await page.waitForFunction(
      ([channel, text]) => document.querySelector(`tr[data-channel="${channel}"] td:nth-child(5)`)?.textContent === text,
      [target.channel, new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 }).format(speed)] as const,
      { timeout: 5000, polling: 10 },
    );
    const elapsed = Date.now() - started;
    console.info(`POSTed change shown after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(1000);
    expect(errors).toEqual([]);
  });

  it("filters and sorts with the list API's parameters: the rows are what the API answers for them", async () => {
    await page.goto(`${system.apiUrl}/`);
    await page.waitForSelector("tr[data-channel]");
    const summary = await api<{ byStatus: Record<string, number> }>("/rockets/summary");
    await page.selectOption("[data-testid=filter-status]", "exploded");
    await page.waitForFunction(
      (n) => {
        const rows = [...document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]")];
        return rows.length === n && rows.every((r) => r.querySelector(".badge")?.textContent === "exploded");
      },
      Math.min(50, summary.byStatus["exploded"]!),
    );
    expect(page.url()).toContain("status=exploded");
    await page.selectOption("[data-testid=sort]", "-speed");
    const expected = (await api<{ rockets: RocketJson[] }>("/rockets?status=exploded&sort=-speed&limit=50")).rockets.map((r) => r.channel);
    await page.waitForFunction((want) => {
      const rows = [...document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]")].map((r) => r.getAttribute("data-channel"));
      return JSON.stringify(rows) === JSON.stringify(want);
    }, expected);
    await shot("fleet-exploded-by-speed");
    // A column header sorts too: by type, ascending.
    await page.click("th button[data-sort=type]");
    const byType = (await api<{ rockets: RocketJson[] }>("/rockets?status=exploded&sort=type&limit=50")).rockets.map((r) => r.channel);
    await page.waitForFunction((want) => {
      const rows = [...document.querySelectorAll("[data-testid=fleet-table] tbody tr[data-channel]")].map((r) => r.getAttribute("data-channel"));
      return JSON.stringify(rows) === JSON.stringify(want);
    }, byType);
    await page.selectOption("[data-testid=filter-status]", "");
    expect(errors).toEqual([]);
  });

  it("shows a rocket's history in number order with what each message did, the gap it waits on, and its speed chart", async () => {
    await page.goto(`${system.apiUrl}/#/rockets/${GAP_CHANNEL}`);
    await page.waitForSelector("[data-testid=gap-numbers]");
    expect(await page.textContent("[data-testid=gap-numbers]")).toBe("4");
    const rows = () =>
      page.$$eval("[data-testid=history-table] tbody tr", (trs) =>
        trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "").filter((_, i) => i === 0 || i === 5 || i === 1)),
      );
    expect(await rows()).toEqual([
      ["#1", "Launched: Titan-IV on GEMINI at 800", "applied"],
      ["#2", "Speed +1,200", "applied"],
      ["#3", "Mission → SKYLAB", "applied"],
      ["#4", "Not received yet: later messages wait for this"],
      ["#5", "Speed +2,500", "buffered"],
      ["#6", "Speed −300", "buffered"],
    ]);
    expect(await page.$("[data-testid=speed-chart] polyline")).not.toBeNull();
    expect(await page.textContent("[data-testid=state-speed] .card-value")).toBe("2,000");
    await shot("rocket-gap");
    // The missing message arrives: the page follows live.
    await post(message(GAP_CHANNEL, 4, "RocketSpeedIncreased", { by: 100 }));
    await page.waitForFunction(() => document.querySelector("[data-testid=state-speed] .card-value")?.textContent === "4,300", undefined, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelector(".gap-none") !== null, undefined, { timeout: 5000 });
    expect((await rows()).map((r) => r[2])).toEqual(["applied", "applied", "applied", "applied", "buffered", "buffered"]);
    await shot("rocket-gap-closed");
    // A rocket of the load program: duplicates and reordering in its history.
    const busy = [...launch.expected.values()].sort((a, b) => b.lastMessageNumber - a.lastMessageNumber)[0]!;
    await page.goto(`${system.apiUrl}/#/rockets/${busy.channel}`);
    await page.waitForSelector("[data-testid=speed-chart]");
    await shot("rocket-busy");
    expect(errors).toEqual([]);
  });

  it("fits a narrow screen: one column, no sideways scrolling of the page", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, url] of [
      ["narrow-fleet", "/"],
      ["narrow-rocket", `/#/rockets/${GAP_CHANNEL}`],
    ] as const) {
      await page.goto(`${system.apiUrl}${url}`);
      await page.waitForSelector("[data-testid=connection][data-state=live]");
      await page.waitForSelector(name === "narrow-fleet" ? "tr[data-channel]" : "[data-testid=history-table]");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, name).toBeLessThanOrEqual(1);
      await shot(name);
      await page.screenshot({ path: join(shots, `${name}-screen.png`) });
    }
    await page.setViewportSize({ width: 1366, height: 900 });
    expect(errors).toEqual([]);
    expect(foreign).toEqual([]);
  });

  it("says reconnecting when the API stops and live again when it is back, with what changed meanwhile", async () => {
    await page.goto(`${system.apiUrl}/`);
    await page.waitForSelector("[data-testid=connection][data-state=live]");
    const api0 = system.apis[0]!;
    const target = launch.expected.values().next().value!;
    const before = await api<RocketJson>(`/rockets/${target.channel}`);
    const errorsBefore = errors.length;
    await api0.stop("SIGTERM");
    await page.waitForSelector("[data-testid=connection][data-state=reconnecting]", { timeout: 10_000 });
    await shot("reconnecting");
    // A change while the API is away (ingest and the sequencer still work): it must show once the API is back.
    await post(message(target.channel, before.lastMessageNumber + 1, "RocketMissionChanged", { newMission: "WHILE-AWAY" }));
    await api0.launch();
    await page.waitForSelector("[data-testid=connection][data-state=live]", { timeout: 30_000 });
    await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=fleet-table] td")].some((td) => td.textContent === "WHILE-AWAY"), undefined, {
      timeout: 5000,
    });
    await shot("live-again");
    // While the API was down the browser itself reports the refused connections it retried; nothing else may be said.
    const outage = errors.splice(errorsBefore);
    expect(outage.filter((e) => !/net::ERR_CONNECTION_REFUSED/.test(e))).toEqual([]);
  }, 90_000);

  it("says so on a rocket's page when retention removed the start of its history, and shows no outcome it cannot know", async () => {
    const busy = [...launch.expected.values()].sort((a, b) => b.lastMessageNumber - a.lastMessageNumber)[0]!;
    await trimStream(system.nats.url, 400);
    await page.goto(`${system.apiUrl}/#/rockets/${busy.channel}`);
    await page.waitForSelector("[data-testid=history-incomplete]");
    const outcomes = await page.$$eval("[data-testid=history-table] tbody tr:not(.gap-row) td:nth-child(6)", (tds) => [...new Set(tds.map((td) => td.textContent))]);
    expect(outcomes).toEqual(["unknown"]);
    expect(await page.$("[data-testid=history-table] tr.gap-row.lost")).not.toBeNull();
    // The live state does not depend on the stream: still the rocket the sequencer made.
    expect(await page.textContent("[data-testid=state-lastMessageNumber] .card-value")).toBe(String(busy.lastMessageNumber));
    await shot("rocket-history-trimmed");
    expect(errors).toEqual([]);
  });
});

describe("the history API over the real events stream", () => {
  let system: RocketsSystem;
  let launch: LaunchResult;

  beforeAll(async () => {
    system = await RocketsSystem.start();
    launch = await runLaunch({
      url: system.messagesUrl,
      maxMessages: 800,
      rockets: 8,
      seed: 77,
      duplicateRate: 0.2,
      reorderWindow: 60,
      concurrency: 4,
      verifyUrl: system.apiUrl,
      verifyTimeoutMs: 60_000,
      key: TEST_KEYS.operator,
    });
    system.expectExact(launch);
  }, 120_000);
  afterAll(async () => {
    await system?.dispose();
  });

  it("folds each rocket's stored history, reordered and duplicated as it arrived, into the state the sequencer stored", async () => {
    for (const [channel, final] of launch.expected) {
      const history = (await (await fetch(`${system.apiUrl}/rockets/${channel}/events?limit=10000`, { headers: bearer(TEST_KEYS.reader) })).json()) as {
        complete: boolean;
        lastApplied: number;
        waitingFor: unknown[];
        events: { seq: number; messageNumber: number; outcome: string; receivedAt: string }[];
      };
      expect(history.complete).toBe(true);
      expect(history.lastApplied).toBe(final.lastMessageNumber);
      expect(history.waitingFor).toEqual([]);
      const seqs = history.events.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const applied = history.events.filter((e) => e.outcome !== "duplicate").map((e) => e.messageNumber);
      expect(applied.sort((a, b) => a - b)).toEqual(Array.from({ length: final.lastMessageNumber }, (_, i) => i + 1));
      // The rocket at its last message, and as of now, is the rocket the API serves.
      const at = (await (await fetch(`${system.apiUrl}/rockets/${channel}?at=${final.lastMessageNumber}`, { headers: bearer(TEST_KEYS.reader) })).json()) as object;
      expect(at).toEqual({ ...final, pendingMessages: 0 });
      const asOf = (await (await fetch(`${system.apiUrl}/rockets/${channel}?asOf=${encodeURIComponent(new Date().toISOString())}`, { headers: bearer(TEST_KEYS.reader) })).json()) as object;
      expect(asOf).toEqual(await (await fetch(`${system.apiUrl}/rockets/${channel}`, { headers: bearer(TEST_KEYS.reader) })).json());
      // Before the first message arrived, there was no rocket.
      const before = await fetch(`${system.apiUrl}/rockets/${channel}?asOf=${encodeURIComponent(new Date(Date.parse(history.events[0]!.receivedAt) - 1).toISOString())}`, { headers: bearer(TEST_KEYS.reader) });
      expect(before.status).toBe(404);
    }
  }, 60_000);

  it("after retention removed the start of a history, says which numbers are gone instead of answering a wrong state", async () => {
    await trimStream(system.nats.url, 300);
    for (const [channel, final] of launch.expected) {
      const history = (await (await fetch(`${system.apiUrl}/rockets/${channel}/events?limit=10000`, { headers: bearer(TEST_KEYS.reader) })).json()) as {
        complete: boolean;
        missing: { from: number; to: number }[];
        heldSince: string;
        events: { outcome: string | null; speedAfter: number | null }[];
      };
      // Launches are among the first messages sent: every rocket lost its start.
      expect(history.complete, channel).toBe(false);
      expect(history.missing[0]!.from).toBe(1);
      expect(history.events.every((e) => e.outcome === null && e.speedAfter === null)).toBe(true);
      for (const url of [`?at=${final.lastMessageNumber}`, `?asOf=${encodeURIComponent(new Date().toISOString())}`]) {
        const res = await fetch(`${system.apiUrl}/rockets/${channel}${url}`, { headers: bearer(TEST_KEYS.reader) });
        expect(res.status, url).toBe(410);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
        expect(await res.json()).toMatchObject({ type: "urn:rockets:problem:history-truncated", missing: history.missing.slice(0, 100), heldSince: history.heldSince });
      }
      // The current state is untouched.
      expect(await (await fetch(`${system.apiUrl}/rockets/${channel}`, { headers: bearer(TEST_KEYS.reader) })).json()).toMatchObject({ lastMessageNumber: final.lastMessageNumber, speed: final.speed });
    }
  }, 60_000);
});
