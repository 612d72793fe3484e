// Builders shared by the API's tests and benchmark: rockets, a loaded view,
// stored histories, and an app over them with a fresh registry.

import type { ApiKeys } from "../../internal/http/api-keys.js";
import { pino } from "pino";
import type { ChannelHistorySource, StoredHistory } from "../../internal/domain/history.js";
import { DEFAULT_HTTP_BOUNDS, type HttpBounds } from "../../internal/http/request-bounds.js";
import { createRegistry } from "../../internal/observability/metrics.js";
import { FleetView } from "../../internal/view/fleet-view.js";
import type { RocketView } from "../../internal/view/rocket-view.js";
export { rocketFixture } from "../../internal/view/rocket.fixture.js";
import { buildApp } from "./app.js";
import type { ConsoleAsset } from "./console-assets.js";
import type { SseSettings } from "./config.js";
import { createApiMetrics, type ApiMetrics } from "./metrics.js";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";

export function loadedView(rockets: RocketView[]): FleetView {
  const view = new FleetView();
  view.beginSync();
  rockets.forEach((r, i) => view.put(r.channel, r, i + 1));
  view.endSync();
  return view;
}

export interface TestApp {
  app: FastifyInstance;
  registry: Registry;
  metrics: ApiMetrics;
}

export const TEST_SSE: SseSettings = { heartbeatMs: 15_000, maxClients: 10, maxQueuedBytes: 1_048_576 };

/** Stored histories by channel, as the events stream would hold them; `failure` makes every read fail with it. */
export class MemoryHistory implements ChannelHistorySource {
  readonly channels = new Map<string, StoredHistory>();
  failure: Error | undefined;

  async read(channel: string): Promise<StoredHistory> {
    if (this.failure) throw this.failure;
    return this.channels.get(channel) ?? { messages: [], rejected: 0, heldSince: null };
  }
}

export async function testApp(
  view: FleetView,
  sse: Partial<SseSettings> = {},
  history?: ChannelHistorySource,
  console?: Map<string, ConsoleAsset>,
  http?: Partial<HttpBounds>,
  auth?: ApiKeys,
): Promise<TestApp> {
  const registry = createRegistry("api");
  const metrics = createApiMetrics(registry, { rocketsInView: () => view.size, viewReady: () => view.ready, summary: () => view.summary() });
  const app = await buildApp({
    view,
    registry,
    metrics,
    log: pino({ level: "silent" }),
    sse: { ...TEST_SSE, ...sse },
    ready: () => (view.ready ? undefined : "view loading"),
    history,
    console,
    http: http && { ...DEFAULT_HTTP_BOUNDS, ...http },
    // Without keys unless a test gives them: the tests of what the routes answer are not about who may ask.
    auth,
  });
  await app.ready();
  return { app, registry, metrics };
}
