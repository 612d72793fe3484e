// Every package `npm ci` installs runs on the Node the project declares: a
// package whose `engines` excludes it makes a fresh install print EBADENGINE
// (and may use what that Node lacks). The lockfile records each package's
// engines, so this is checked without installing anything.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../internal/testing/service-process.js";

// npm's own range semantics; semver is installed with fastify.
const semver = createRequire(import.meta.url)("semver") as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string, options?: { includePrerelease?: boolean }): boolean;
};

interface LockedPackage {
  version?: string;
  engines?: { node?: string } | string[];
  optional?: boolean;
  os?: string[];
}

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, LockedPackage> };

/** The packages of the lockfile whose declared Node range excludes `version`. */
function excluding(version: string): string[] {
  const out: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || Array.isArray(entry.engines) || entry.engines?.node === undefined) continue;
    if (!semver.satisfies(version, entry.engines.node, { includePrerelease: true })) {
      out.push(`${path.replace(/^.*node_modules\//, "")}@${entry.version} wants node ${entry.engines.node}`);
    }
  }
  return out;
}

describe("dependencies", () => {
  const oldest = semver.minVersion(pkg.engines.node)!.version;

  it(`all accept the oldest Node the package declares (${pkg.engines.node})`, () => {
    expect(excluding(oldest)).toEqual([]);
  });

  it("all accept the Node running these tests", () => {
    expect(excluding(process.versions.node)).toEqual([]);
  });

  it("the check can fail: a Node older than every dependency supports is refused by some", () => {
    expect(excluding("16.0.0").length).toBeGreaterThan(0);
  });
});
