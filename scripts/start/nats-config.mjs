// The nats-server configuration file for a local node, standalone or one of a
// cluster, rendered from a few settings. One renderer for `npm run cluster`,
// the test harness's clusters (so every cluster test exercises it) and, later,
// `npm start`: a node started from a file says everything about itself in one
// place, and options with no command-line flag (`sync_interval`) need a file.
//
// Plain JavaScript with no dependencies, because `npm start` and `npm run
// cluster` load it before the npm dependencies may be installed. Every value
// is checked before it is written, so a bad setting fails here, naming the
// setting, instead of as a parse error of nats-server.

const SERVER_NAME = /^[A-Za-z0-9_-]+$/;
/** `always` (flush after every write) or a Go duration such as `100ms`, `1s`, `2m`. */
const SYNC_INTERVAL = /^(always|\d+(ms|s|m|h))$/;

function checkPort(name, value) {
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    throw new Error(`${name} must be a port number (1-65535), got ${JSON.stringify(value)}`);
  }
}

function checkName(name, value) {
  if (typeof value !== "string" || !SERVER_NAME.test(value)) {
    throw new Error(`${name} must be letters, digits, '-' or '_', got ${JSON.stringify(value)}`);
  }
}

/** A double-quoted string in nats-server's configuration syntax (the same escapes as JSON). */
const quoted = (text) => JSON.stringify(text);

/**
 * Renders a nats-server configuration with JetStream on a file store.
 *
 * @param {{
 *   serverName: string,
 *   host: string,
 *   port: number,
 *   monitorPort: number,
 *   storeDir: string,
 *   cluster?: { name: string, port: number, routes: string[] } | { name: string, port: number, authenticatedRoutes: number },
 *   syncInterval?: string,
 *   accounts?: string,
 * }} options `cluster.routes` are the other nodes' route URLs (`nats-route://host:port`).
 *   `cluster.authenticatedRoutes` instead: that many routes read from the server's environment,
 *   `$NATS_ROUTE_0`..., each a URL carrying the route credentials, and every route asked for the
 *   user `route` with the password `$NATS_ROUTE_PASSWORD` (as deploy/k8s/nats/nats.conf does; the
 *   secret stays out of the file). `syncInterval` is JetStream's `sync_interval` (`always` or a
 *   duration), the server's default when absent. `accounts`: a file to include, relative to this
 *   one (deploy/nats/accounts.conf copied beside it), whose `$NATS_*` passwords the server's
 *   environment must hold.
 * @returns {string}
 */
export function renderNatsConfig({ serverName, host, port, monitorPort, storeDir, cluster, syncInterval, accounts }) {
  checkName("serverName", serverName);
  if (typeof host !== "string" || host === "" || /[\s"]/.test(host)) throw new Error(`host must be a host name or address, got ${JSON.stringify(host)}`);
  checkPort("port", port);
  checkPort("monitorPort", monitorPort);
  if (typeof storeDir !== "string" || storeDir === "") throw new Error("storeDir must be a directory path");
  if (syncInterval !== undefined && !SYNC_INTERVAL.test(syncInterval)) {
    throw new Error(`syncInterval must be "always" or a duration like 100ms or 1s, got ${JSON.stringify(syncInterval)}`);
  }

  const lines = [
    "# Written by Rockets (scripts/start/nats-config.mjs); rewritten at every start.",
    `server_name: ${quoted(serverName)}`,
    `listen: ${quoted(`${host}:${port}`)}`,
    `http: ${quoted(`${host}:${monitorPort}`)}`,
    "",
    "jetstream {",
    `  store_dir: ${quoted(storeDir)}`,
  ];
  if (syncInterval !== undefined) lines.push(`  sync_interval: ${quoted(syncInterval)}`);
  lines.push("}");

  if (cluster) {
    checkName("cluster.name", cluster.name);
    checkPort("cluster.port", cluster.port);
    lines.push("", "cluster {", `  name: ${quoted(cluster.name)}`, `  listen: ${quoted(`${host}:${cluster.port}`)}`);
    if ("authenticatedRoutes" in cluster) {
      if (!Number.isInteger(cluster.authenticatedRoutes) || cluster.authenticatedRoutes < 1) throw new Error("cluster.authenticatedRoutes must be the number of routes");
      lines.push(
        "  authorization {",
        '    user: "route"',
        "    password: $NATS_ROUTE_PASSWORD",
        "    timeout: 2",
        "  }",
        "  routes: [",
        ...Array.from({ length: cluster.authenticatedRoutes }, (_, i) => `    $NATS_ROUTE_${i}`),
        "  ]",
      );
    } else {
      if (!Array.isArray(cluster.routes) || cluster.routes.length === 0) throw new Error("cluster.routes must list the other nodes' route URLs");
      for (const route of cluster.routes) {
        if (typeof route !== "string" || !/^nats-route:\/\/[^\s"]+:\d+$/.test(route)) {
          throw new Error(`cluster.routes must be nats-route://host:port URLs, got ${JSON.stringify(route)}`);
        }
      }
      lines.push("  routes: [", ...cluster.routes.map((route) => `    ${quoted(route)}`), "  ]");
    }
    lines.push("}");
  }
  if (accounts !== undefined) {
    if (typeof accounts !== "string" || !/^\.\/[A-Za-z0-9._-]+$/.test(accounts)) throw new Error(`accounts must be a file name beside the configuration (./name), got ${JSON.stringify(accounts)}`);
    lines.push("", "# The accounts and users every deployment uses (deploy/nats/accounts.conf).", `include ${accounts}`);
  }
  return `${lines.join("\n")}\n`;
}
