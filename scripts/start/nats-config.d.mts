// Types of nats-config.mjs for the TypeScript that uses it (the test harness).

export interface NatsConfigOptions {
  serverName: string;
  host: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  /**
   * `routes`: the other nodes' route URLs, `nats-route://host:port`; or
   * `authenticatedRoutes`: that many routes from `$NATS_ROUTE_0`... in the
   * server's environment (URLs with the route credentials), every route
   * asked for the user `route` and `$NATS_ROUTE_PASSWORD`.
   */
  cluster?: { name: string; port: number; routes: string[] } | { name: string; port: number; authenticatedRoutes: number };
  /** JetStream's `sync_interval`: `always` or a duration (`100ms`, `1s`); the server's default when absent. */
  syncInterval?: string;
  /** An accounts file to include, beside this one (`./accounts.conf`). */
  accounts?: string;
}

export function renderNatsConfig(options: NatsConfigOptions): string;
