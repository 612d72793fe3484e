// The console as the API serves it: the real build (esbuild, as npm run
// build makes it) in a directory of the test's own.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { buildConsole } from "../../scripts/build-console.mjs";
import { CONSOLE_CSP, loadConsoleAssets, type ConsoleAsset } from "./console-assets.js";
import { loadedView, testApp } from "./app.fixture.js";

describe("the operator console at /", () => {
  let dir: string;
  let assets: Map<string, ConsoleAsset>;
  let app: FastifyInstance;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "rockets-console-"));
    await buildConsole(dir);
    assets = loadConsoleAssets(dir)!;
    app = (await testApp(loadedView([]), {}, undefined, assets)).app;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page with a policy that allows this origin only, and its assets with their types", async () => {
    const page = await app.inject("/");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.headers["content-security-policy"]).toBe(CONSOLE_CSP);
    expect(page.body).toContain('src="/assets/console.js"');
    for (const [file, type] of [
      ["console.js", "text/javascript"],
      ["console.css", "text/css"],
      ["favicon.svg", "image/svg+xml"],
    ] as const) {
      const res = await app.inject(`/assets/${file}`);
      expect(res.statusCode, file).toBe(200);
      expect(res.headers["content-type"], file).toContain(type);
    }
  });

  it("answers 304 to a matching ETag", async () => {
    const first = await app.inject("/assets/console.js");
    const again = await app.inject({ url: "/assets/console.js", headers: { "if-none-match": first.headers["etag"] as string } });
    expect(again.statusCode).toBe(304);
  });

  it("serves nothing but the build's own files", async () => {
    for (const url of ["/assets/nope.js", "/assets/..%2F..%2Fpackage.json", "/assets/index.html", "/assets/"]) {
      const res = await app.inject(url);
      expect(res.statusCode, url).toBe(404);
    }
  });

  it("refers to no other host: every URL in the built files is local", () => {
    for (const name of ["index.html", "console.js", "console.css"]) {
      const text = assets.get(name)!.body.toString("utf8");
      const urls = [...text.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi)].map((m) => m[0]);
      // The SVG namespace is a name, not a request.
      expect(urls.filter((u) => !u.startsWith("http://www.w3.org/")), name).toEqual([]);
    }
  });

  it("says how to build the console when there is no build", async () => {
    const bare = (await testApp(loadedView([]))).app;
    try {
      const res = await bare.inject("/");
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain("npm run build");
    } finally {
      await bare.close();
    }
  });
});
