// docs/security.md against the code: every bound a client can run into is
// listed in Limits with the default the configuration really has, and Keys
// names every scope the services check.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig as loadApi } from "../cmd/api/config.js";
import { loadConfig as loadIngest } from "../cmd/ingest/config.js";
import { loadConfig as loadSequencer } from "../cmd/sequencer/config.js";
import { SCOPES } from "../internal/http/api-keys.js";
import { ROOT } from "./deploy/manifests.js";
import { DEFAULT_STATE_MAX_BYTES } from "../internal/config/common.js";

const doc = readFileSync(join(ROOT, "docs", "security.md"), "utf8");
const limits = doc.slice(doc.indexOf("## Limits"));

/** The table row of `variable`, whose third cell is its default. */
function defaultOf(variable: string): string | undefined {
  const row = limits.split("\n").find((line) => line.startsWith("|") && line.split("|")[2]?.trim() === `\`${variable}\``);
  return row?.split("|")[3]?.trim();
}

describe("docs/security.md", () => {
  it("lists every HTTP, rate, event stream and body limit with the default the configuration has", () => {
    const ingest = loadIngest({ AUTH: "off" });
    const api = loadApi({ AUTH: "off" });
    const sequencer = loadSequencer({ AUTH: "off" });
    const expected: Record<string, number> = {
      HTTP_HEADERS_TIMEOUT_MS: ingest.http.headersTimeoutMs,
      HTTP_REQUEST_TIMEOUT_MS: ingest.http.requestTimeoutMs,
      HTTP_IDLE_TIMEOUT_MS: ingest.http.idleTimeoutMs,
      HTTP_KEEP_ALIVE_TIMEOUT_MS: ingest.http.keepAliveTimeoutMs,
      HTTP_MAX_CONNECTIONS: ingest.http.maxConnections,
      HTTP_MAX_IN_FLIGHT: ingest.http.maxInFlight,
      BODY_LIMIT_BYTES: ingest.bodyLimitBytes,
      BATCH_BODY_LIMIT_BYTES: ingest.batchBodyLimitBytes,
      MAX_BATCH: ingest.maxBatch,
      PUBLISH_MAX_IN_FLIGHT: ingest.publishMaxInFlight,
      PUBLISH_TIMEOUT_MS: ingest.publishTimeoutMs,
      SSE_MAX_CLIENTS: api.sse.maxClients,
      SSE_MAX_CLIENTS_PER_CLIENT: api.sse.maxClientsPerClient!,
      SSE_MAX_QUEUED_BYTES: api.sse.maxQueuedBytes,
      HISTORY_MAX_MESSAGES: api.history.maxMessages,
      SUMMARY_TOP_LABELS: api.summaryTopLabels,
      MAX_PENDING_PER_CHANNEL: sequencer.maxPendingPerChannel,
      MAX_ACTORS: sequencer.maxActors,
      MAX_ACK_PENDING: sequencer.maxAckPending,
      MAX_BUFFERED_MESSAGES: sequencer.maxBufferedMessages,
      MAX_BUFFERED_BYTES: sequencer.maxBufferedBytes,
      MAX_UNLAUNCHED_CHANNELS: sequencer.maxUnlaunchedChannels,
      GAP_DEADLINE_SECONDS: sequencer.gapDeadlineSeconds,
    };
    const documented = Object.fromEntries(Object.keys(expected).map((name) => [name, Number(defaultOf(name))]));
    expect(documented).toEqual(expected);
    // Every service reads the same HTTP bounds.
    expect(api.http).toEqual(ingest.http);
    expect(sequencer.http).toEqual(ingest.http);
    const rate = limits.split("\n").find((l) => l.includes("`RATE_LIMIT_MAX` per `RATE_LIMIT_WINDOW_SECONDS`"));
    expect(rate).toContain(`${ingest.rateLimit.max} per ${ingest.rateLimit.windowSeconds} s`);
    expect(defaultOf("STATE_MAX_BYTES")).toBe(`${DEFAULT_STATE_MAX_BYTES / 2 ** 30}GiB`);
  });

  it("describes every key scope the services check, how keys are made and rotated, AUTH=off and the threat model", () => {
    const keys = doc.slice(doc.indexOf("## Keys"), doc.indexOf("## Limits"));
    for (const scope of SCOPES) expect(keys, scope).toMatch(new RegExp(`^\\| \`${scope}\` \\|`, "m"));
    for (const section of ["## Keys", "### Creating a key", "### Rotating a key", "## What AUTH=off exposes", "## Threat model"]) expect(doc).toContain(section);
    expect(keys).toContain("npm run keys -- add <name> <scopes>");
    // The defaults the doc states are the configuration's.
    expect(() => loadIngest({})).toThrow(/AUTH_KEYS_FILE must name the API keys file/);
    expect(keys).toContain("`AUTH=on`, the default");
  });

  it("names, for each NATS credential, tests that exist", () => {
    const section = doc.slice(doc.indexOf("### What each NATS credential can do"), doc.indexOf("## Limits"));
    const rows = section.split("\n").filter((line) => /^\| (`[a-z-]+`|route password)/.test(line));
    expect(rows.map((r) => r.split("|")[1]!.trim())).toEqual(["`ingest`", "`api`", "`sequencer`", "`rockets-admin`", "route password (Kubernetes base, `npm run cluster`)"]);
    const titlesIn = (file: string) => [...readFileSync(join(ROOT, file), "utf8").matchAll(/\bit\(\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)/g)].map((m) => (m[1] ?? m[2])!.replace(/\$\{[^}]*\}/g, ""));
    const named: string[] = [];
    for (const paragraph of [...rows.map((r) => r.split("|")[4]!), section.slice(section.indexOf("What remains open"))]) {
      const files = [...paragraph.matchAll(/`(test\/[a-z0-9-]+\.test\.ts)`/g)].map((m) => m[1]!);
      const titles = titlesIn(files[0] ?? "test/nats-permissions.test.ts");
      for (const [, quoted] of paragraph.matchAll(/"([^"]+)"/g)) {
        const prefix = quoted!.replace(/\s+/g, " ").replace(/^(as (ingest|api) )?› /, "").replace(/\.\.\.$/, "").trim();
        if (prefix === "" || prefix === "as api ›") continue;
        named.push(prefix);
        expect(titles.some((t) => t.startsWith(prefix)), `no test titled "${prefix}..." in ${files[0] ?? "test/nats-permissions.test.ts"}`).toBe(true);
      }
    }
    expect(named.length).toBeGreaterThan(8);
  });
});

