// `npm run chaos`: sets up what the chaos run needs on a fresh machine (npm
// dependencies, a nats-server), then runs scripts/chaos/main.ts with tsx and
// exits with its code. Ctrl-C at the terminal reaches the run itself (same
// process group), which stops everything it started; a SIGTERM sent to this
// process alone is passed on to it.

import { spawn } from "node:child_process";
import { constants } from "node:os";
import { join } from "node:path";
import { ensureNatsServer, ensureNodeModules, ROOT } from "./prereqs.mjs";

ensureNodeModules();
// The harness runs NATS_SERVER_BIN: Debian's binary may sit in /usr/sbin, off a user's PATH.
process.env.NATS_SERVER_BIN = ensureNatsServer();

const child = spawn(process.execPath, ["--import", "tsx", join("scripts", "chaos", "main.ts"), ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: "inherit",
});
process.on("SIGINT", () => {
  // The terminal sent it to the run as well; wait for the run to stop everything.
});
process.on("SIGTERM", () => child.kill("SIGTERM"));
child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
