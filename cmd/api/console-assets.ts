// The operator console at `/`: the files scripts/build-console.mjs built,
// read once at start and served from memory (no separate server to run).
//
// Guarantees:
// - Only the files of the build are served (looked up by name; a path can
//   never leave the directory), each with its type and an ETag.
// - The page may load and connect to nothing but this API: its
//   Content-Security-Policy allows only this origin, so the console can make
//   no request to another host even by mistake.
// - Without a build, `/` says how to make one instead of failing.

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";

export interface ConsoleAsset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
};

export const CONSOLE_CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Where `npm run build` puts the console: dist/console, seen from this file
 * compiled (dist/cmd/api) or as source (cmd/api).
 */
export function defaultConsoleDir(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const compiled = join(here, "..", "..", "console");
  return existsSync(join(compiled, "index.html")) ? compiled : join(here, "..", "..", "dist", "console");
}

/** The built files by name, or undefined when `dir` holds no build. */
export function loadConsoleAssets(dir: string): Map<string, ConsoleAsset> | undefined {
  if (!existsSync(join(dir, "index.html"))) return undefined;
  const assets = new Map<string, ConsoleAsset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` });
  }
  return assets;
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Rockets console not built</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;line-height:1.5">
<h1>The console is not built</h1>
<p>Run <code>npm run build</code> (or start everything with <code>npm start</code>, which builds it), then reload.
The API itself works: see <a href="/docs">/docs</a>.</p></body></html>`;

function send(reply: FastifyReply, asset: ConsoleAsset, ifNoneMatch: string | undefined): FastifyReply {
  reply.headers({ etag: asset.etag, "cache-control": "no-cache", "x-content-type-options": "nosniff" });
  if (ifNoneMatch === asset.etag) return reply.code(304).send();
  return reply.type(asset.type).send(asset.body);
}

export function registerConsoleRoutes(app: FastifyInstance, assets: Map<string, ConsoleAsset> | undefined): void {
  app.get(
    "/",
    {
      schema: {
        summary: "The operator console",
        description: "A web page showing the live fleet, each rocket's history and its gaps, read from this API.",
        tags: ["console"],
        response: {
          200: { description: "The console's HTML page", content: { "text/html": { schema: { type: "string" } } } },
          304: { description: "Unchanged since the ETag given in If-None-Match", type: "null" },
          503: { description: "The console has not been built (npm run build); the page says so", content: { "text/html": { schema: { type: "string" } } } },
        },
      },
    },
    (request, reply) => {
      const page = assets?.get("index.html");
      if (!page) return reply.code(503).type(TYPES[".html"]!).send(NOT_BUILT);
      reply.header("content-security-policy", CONSOLE_CSP);
      return send(reply, page, request.headers["if-none-match"]);
    },
  );

  app.get<{ Params: { file: string } }>("/assets/:file", { schema: { hide: true } }, (request, reply) => {
    const asset = request.params.file === "index.html" ? undefined : assets?.get(request.params.file);
    if (!asset) return reply.callNotFound();
    return send(reply, asset, request.headers["if-none-match"]);
  });
}
