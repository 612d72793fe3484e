// Builds the operator console (web/console: plain TypeScript, no framework)
// into dist/console with esbuild, which the project already has through tsx:
// one bundled script, one stylesheet, the page and its icon. The query API
// serves that directory at `/`. Run by `npm run build` and by `npm start`;
// tests call buildConsole() with a directory of their own.

import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = join(ROOT, "web", "console");
export const CONSOLE_OUT_DIR = join(ROOT, "dist", "console");

/** Writes console.js, console.css, index.html and favicon.svg into `outdir`. */
export async function buildConsole(outdir = CONSOLE_OUT_DIR) {
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: { console: join(SOURCE, "main.ts") },
    outdir,
    bundle: true,
    format: "esm",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    minify: true,
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
  });
  for (const file of ["index.html", "favicon.svg"]) copyFileSync(join(SOURCE, file), join(outdir, file));
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = await buildConsole(process.argv[2] ?? CONSOLE_OUT_DIR);
  process.stderr.write(`[build] console built in ${outdir}\n`);
}
