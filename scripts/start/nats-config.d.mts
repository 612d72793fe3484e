// Types of nats-config.mjs for the TypeScript that uses it (the test harness).

export interface NatsConfigOptions {
  serverName: string;
  host: string;
  port: number;
  monitorPort: number;
  storeDir: string;
  /** `routes`: the other nodes' route URLs, `nats-route://host:port`. */
  cluster?: { name: string; port: number; routes: string[] };
  /** JetStream's `sync_interval`: `always` or a duration (`100ms`, `1s`); the server's default when absent. */
  syncInterval?: string;
}

export function renderNatsConfig(options: NatsConfigOptions): string;
