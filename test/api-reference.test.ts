// The API reference at /docs in a real browser (Debian's chromium driven by
// playwright-core), under the Content-Security-Policy it is served with
// (internal/http/api-reference.ts): it must render, load nothing from another
// host, and trip no violation, or the policy would be either too loose to
// matter or too strict to leave the page usable.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import type { FastifyInstance } from "fastify";
import { loadedView, rocketFixture, testApp } from "../cmd/api/app.fixture.js";
import { API_REFERENCE_CSP } from "../internal/http/api-reference.js";

const CHROMIUM = process.env["CHROMIUM_BIN"] ?? "/usr/bin/chromium";

describe("the API reference in a browser, under its Content-Security-Policy", () => {
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    app = (await testApp(loadedView([rocketFixture("a1")]))).app;
    base = await app.listen({ host: "127.0.0.1", port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it("renders the operations with no policy violation and no request to another host", async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    const hosts = new Set<string>();
    page.on("console", (m) => {
      if (m.type() === "error" || /Content Security Policy/i.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (err) => problems.push(String(err)));
    page.on("request", (r) => hosts.add(new URL(r.url()).host));
    const answer = await page.goto(`${base}/docs`);
    expect(answer?.headers()["content-security-policy"]).toBe(API_REFERENCE_CSP);
    // swagger-ui lists the operations once it has loaded and rendered the OpenAPI document.
    await page.waitForSelector(".opblock-summary-path", { timeout: 20_000 });
    const paths = await page.$$eval(".opblock-summary-path", (nodes) => nodes.map((n) => n.getAttribute("data-path")));
    expect(paths).toContain("/rockets/{channel}");
    expect(await page.textContent(".info .title")).toContain("Rockets query API");
    expect(problems).toEqual([]);
    expect([...hosts]).toEqual([new URL(base).host]);
    await page.close();
  }, 40_000);

  it("stops what the policy forbids: an inline script injected into the page does not run", async () => {
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${base}/docs`);
    await page.waitForSelector(".opblock-summary-path", { timeout: 20_000 });
    const ran = await page.evaluate(() => {
      const w = globalThis as unknown as { injected?: boolean; document: { createElement(t: string): { textContent: string }; body: { appendChild(n: unknown): void } } };
      const script = w.document.createElement("script");
      script.textContent = "window.injected = true";
      w.document.body.appendChild(script);
      return w.injected === true;
    });
    expect(ran).toBe(false);
    expect(violations.length).toBeGreaterThan(0);
    await page.close();
  }, 40_000);
});
