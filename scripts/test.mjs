// `npm test`: sets up what the tests need on a fresh machine, then runs the
// typecheck, the linter, the build (the tests run the services compiled)
// and every test (unit, integration against real
// nats-servers, whole-system). Extra arguments go to vitest.

import { spawnSync } from "node:child_process";
import { ensureChromium, ensureNatsServer, ensureNodeModules, ensurePrometheus, ROOT } from "./prereqs.mjs";

ensureNodeModules();
// The harness runs NATS_SERVER_BIN: Debian's binary may sit in /usr/sbin, off a user's PATH.
process.env.NATS_SERVER_BIN = ensureNatsServer();
ensurePrometheus();
process.env.CHROMIUM_BIN = ensureChromium();
process.env.ROCKETS_TEST_RUN_BUILT = "1";

const steps = [
  ["typecheck", ["npx", "tsc", "--noEmit"]],
  ["typecheck (console)", ["npx", "tsc", "-p", "web/console"]],
  ["lint", ["npx", "eslint", "."]],
  // Services in the tests then run compiled, as in the image (internal/testing/service-process.ts).
  ["build", ["npm", "run", "--silent", "build"]],
  ["tests", ["npx", "vitest", "run", ...process.argv.slice(2)]],
];
for (const [name, [cmd, ...args]] of steps) {
  process.stderr.write(`\n[test] ${name}: ${[cmd, ...args].join(" ")}\n`);
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: ROOT });
  if (r.status !== 0) {
    process.stderr.write(`[test] ${name} failed\n`);
    process.exit(r.status ?? 1);
  }
}
