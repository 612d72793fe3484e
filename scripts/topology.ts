// `npm run topology`: shows a deployment's recorded shape (partitions,
// replicas) and its events stream's settings; `npm run topology -- set
// replicas=3 max-age=14d max-bytes=20GiB duplicate-window=300 compression=s2
// state-max-bytes=2GiB` changes them on purpose. Services never change an existing stream or
// bucket at start (they refuse a conflicting setting and name this command),
// so this is the one deliberate way. `npm run topology -- upgrade` gives a
// deployment created before the readers held no consumer the direct gets and
// the state bucket's republishing they read through (docs/security.md).
// Connects like the services do: NATS_URL and the NATS_* credentials from the
// environment (the admin user's, deploy/nats/accounts.conf).

import { EnvReader, type Env } from "../internal/config/env-reader.js";
import { MIN_STATE_MAX_BYTES, readNats, STREAM_COMPRESSIONS, type StreamCompression } from "../internal/config/common.js";
import { connect } from "@nats-io/transport-node";
import { connectionOptions } from "../internal/nats/connection.js";
import { changeTopology, describeTopology, upgradeReadPaths, type TopologyChange } from "../internal/nats/topology.js";
import { createLogger } from "../internal/observability/logger.js";

const USAGE = `usage: npm run topology [-- show]
       npm run topology -- upgrade
       npm run topology -- set [replicas=N] [max-age=DURATION] [max-bytes=SIZE] [duplicate-window=DURATION] [compression=s2|none] [state-max-bytes=SIZE]
  DURATION: seconds, or a number with s, m, h or d (7d); SIZE: bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB, TB
`;

/** Parses `key=value` arguments with the same readers (and limits) the services use for the environment. */
function parseChange(args: string[]): TopologyChange {
  const env: Record<string, string> = {};
  const names: Record<string, string> = {
    replicas: "STREAM_REPLICAS",
    "max-age": "STREAM_MAX_AGE",
    "max-bytes": "STREAM_MAX_BYTES",
    "duplicate-window": "DUPLICATE_WINDOW_SECONDS",
    compression: "STREAM_COMPRESSION",
    "state-max-bytes": "STATE_MAX_BYTES",
  };
  const r = new EnvReader(env as Env);
  for (const arg of args) {
    const [key, value] = arg.split("=", 2);
    const name = key === undefined ? undefined : names[key];
    if (name === undefined || value === undefined) r.problem(`unknown setting "${arg}": expected one of ${Object.keys(names).join(", ")} as key=value`);
    else env[name] = value;
  }
  const change: TopologyChange = {
    replicas: r.int("STREAM_REPLICAS", undefined, { min: 1, max: 5 }),
    maxAgeSeconds: r.duration("STREAM_MAX_AGE", undefined, { min: 60, max: 10 * 365 * 86_400 }),
    maxBytes: r.bytes("STREAM_MAX_BYTES", undefined, { min: 2 ** 20, max: 2 ** 50 }),
    duplicateWindowSeconds: r.duration("DUPLICATE_WINDOW_SECONDS", undefined, { min: 120, max: 86_400 }),
    stateMaxBytes: r.bytes("STATE_MAX_BYTES", undefined, { min: MIN_STATE_MAX_BYTES, max: 2 ** 50 }),
  };
  const compression = r.string("STREAM_COMPRESSION");
  if (compression !== undefined) {
    if ((STREAM_COMPRESSIONS as readonly string[]).includes(compression)) change.compression = compression as StreamCompression;
    else r.problem(`compression must be one of ${STREAM_COMPRESSIONS.join(", ")}, got "${compression}"`);
  }
  r.done();
  for (const k of Object.keys(change) as Array<keyof TopologyChange>) if (change[k] === undefined) delete change[k];
  if (Object.keys(change).length === 0) throw new Error(`nothing to set\n${USAGE}`);
  return change;
}

async function main(): Promise<void> {
  const [command = "show", ...rest] = process.argv.slice(2);
  if (command !== "show" && command !== "set" && command !== "upgrade") throw new Error(`unknown command "${command}"\n${USAGE}`);
  const change = command === "set" ? parseChange(rest) : undefined;
  const reader = new EnvReader(process.env);
  const nats = readNats(reader, "rockets-topology");
  reader.done();
  const log = createLogger("topology", "warn");
  // Unlike a service, a command fails at once when NATS is not there.
  const nc = await connect({ ...(await connectionOptions(nats)), waitOnFirstConnect: false, maxReconnectAttempts: 0 });
  try {
    if (change) await changeTopology(nc, change, log);
    if (command === "upgrade") {
      const changed = await upgradeReadPaths(nc, log);
      process.stdout.write(changed.length === 0 ? "nothing to upgrade\n" : `${changed.join("\n")}\n`);
    }
    process.stdout.write(`${JSON.stringify(await describeTopology(nc), null, 2)}\n`);
  } finally {
    await nc.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
