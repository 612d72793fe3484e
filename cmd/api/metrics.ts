// The query API's own metrics (request metrics come from registerServiceRoutes).

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../../internal/observability/metrics.js";

export interface ApiMetrics {
  viewUpdateLag: Histogram;
  sseClients: Gauge;
  unreadableStates: Counter;
  sseDropped: Counter<"reason">;
}

/** What the view-derived gauges read at scrape time. */
export interface ViewGauges {
  rocketsInView(): number;
  viewReady(): boolean;
}

export const SseDropReason = { Slow: "slow", Limit: "limit" } as const;
export type SseDropReason = (typeof SseDropReason)[keyof typeof SseDropReason];

export function createApiMetrics(registry: Registry, gauges: ViewGauges): ApiMetrics {
  const p = `${METRIC_PREFIX}api_`;
  new Gauge({
    name: `${p}rockets_in_view`,
    help: "Rockets in this instance's view",
    registers: [registry],
    collect() {
      this.set(gauges.rocketsInView());
    },
  });
  new Gauge({
    name: `${p}view_ready`,
    help: "1 once the view finished loading the state bucket, else 0",
    registers: [registry],
    collect() {
      this.set(gauges.viewReady() ? 1 : 0);
    },
  });
  return {
    sseClients: new Gauge({ name: `${p}sse_clients`, help: "Server-Sent Events streams open", registers: [registry] }),
    viewUpdateLag: new Histogram({
      name: `${p}view_update_lag_seconds`,
      help: "Time from a state's KV write to this view applying it (live changes only, not the initial load)",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    unreadableStates: new Counter({
      name: `${p}view_unreadable_states_total`,
      help: "KV entries the view could not read as a channel state (kept out of the view)",
      registers: [registry],
    }),
    sseDropped: new Counter({
      name: `${p}sse_dropped_total`,
      help: "Server-Sent Events streams closed or refused by the server: slow (fell too far behind) or limit (too many streams)",
      labelNames: ["reason"],
      registers: [registry],
    }),
  };
}
