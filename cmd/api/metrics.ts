// The query API's own metrics (request metrics come from registerServiceRoutes),
// and the fleet as its view sees it, for dashboards. Fleet labels are
// bounded: status has two values, type and mission keep the FLEET_TOP_N
// largest groups and sum the rest under "other"; a channel id is never a label.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { LATENCY_BUCKETS, METRIC_PREFIX } from "../../internal/observability/metrics.js";
import type { Summary } from "../../internal/view/fleet-view.js";

/** Types and missions labelled by name; the rest are summed under OTHER_LABEL. */
export const FLEET_TOP_N = 10;
export const OTHER_LABEL = "other";

/**
 * The `n` largest counts by name (ties by name), the rest, and `unlisted`
 * (rockets the counts already left out), summed under OTHER_LABEL when there
 * is any.
 */
export function topCounts(counts: Record<string, number>, n: number, unlisted = 0): Map<string, number> {
  const sorted = Object.entries(counts).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const out = new Map(sorted.slice(0, n));
  const rest = sorted.slice(n).reduce((sum, [, count]) => sum + count, 0) + unlisted;
  // A real type or mission named "other" is added into the same series rather than shown twice.
  if (sorted.length > n || unlisted > 0) out.set(OTHER_LABEL, (out.get(OTHER_LABEL) ?? 0) + rest);
  return out;
}

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
  /** The fleet's counts; absent where no view is at hand (then no fleet gauges are exported). */
  summary?(): Summary;
}

export const SseDropReason = { Slow: "slow", Limit: "limit", ClientLimit: "client_limit" } as const;
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
  if (gauges.summary) registerFleetGauges(registry, p, gauges.summary);
  const sseDropped = new Counter({
    name: `${p}sse_dropped_total`,
    help: "Server-Sent Events streams closed or refused by the server: slow (fell too far behind), limit (too many streams), client_limit (too many streams from one client)",
    labelNames: ["reason"],
    registers: [registry],
  });
  // Every series exists from the start, so rate() and alerts see a 0 rather than nothing.
  for (const reason of Object.values(SseDropReason)) sseDropped.labels(reason).inc(0);
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
    sseDropped,
  };
}

function registerFleetGauges(registry: Registry, p: string, summary: () => Summary): void {
  // Each gauge reads the summary itself: the view keeps it, so a read costs O(SUMMARY_TOP_LABELS).
  const current = summary;
  const labelled = (name: string, help: string, label: string, counts: (s: Summary) => Map<string, number>) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, count] of counts(current())) this.set({ [label]: value }, count);
      },
    });
  labelled(`${p}fleet_rockets`, "Rockets in this instance's view by status", "status", (s) => new Map(Object.entries(s.byStatus)));
  labelled(
    `${p}fleet_rockets_by_type`,
    `Rockets by type: the ${FLEET_TOP_N} most common types, the rest summed as "${OTHER_LABEL}"`,
    "type",
    (s) => topCounts(s.byType, FLEET_TOP_N, s.otherTypes),
  );
  labelled(
    `${p}fleet_rockets_by_mission`,
    `Rockets by mission: the ${FLEET_TOP_N} most common missions, the rest summed as "${OTHER_LABEL}"`,
    "mission",
    (s) => topCounts(s.byMission, FLEET_TOP_N, s.otherMissions),
  );
  new Gauge({
    name: `${p}fleet_average_speed`,
    help: "Mean speed of the rockets in this instance's view (absent while there are none)",
    registers: [registry],
    collect() {
      this.reset();
      const average = current().averageSpeed;
      if (average !== null) this.set(average);
    },
  });
  new Gauge({
    name: `${p}fleet_rockets_waiting_on_gaps`,
    help: "Rockets with messages waiting behind a gap (a missing earlier message)",
    registers: [registry],
    collect() {
      this.set(current().waitingOnGaps);
    },
  });
}
