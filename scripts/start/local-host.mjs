// What a local run (`npm start`, `npm run cluster`) needs from the machine:
// ports read from the environment, a check that a port is free before
// anything starts (so a second run fails at once, naming the variable to
// change, instead of half-starting), and waiting for an HTTP endpoint.

import { createServer } from "node:net";

/** A port number from the environment, or `fallback` when unset; throws naming the variable when invalid. */
export function portFromEnv(env, variable, fallback) {
  const raw = env[variable];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new Error(`${variable} must be a port number (1-65535), got ${JSON.stringify(raw)}`);
  return n;
}

/** Whether nothing listens on host:port (by listening on it for a moment). */
export function isPortFree(host, port) {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `url` until it answers 2xx (true), `timeoutMs` passes or `stillWanted()` turns false (false). */
export async function waitForHttp(url, timeoutMs, stillWanted = () => true) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && stillWanted()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  return false;
}
