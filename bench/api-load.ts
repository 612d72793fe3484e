// Load generator for bench:api, run as its own process so that it does not
// share an event loop with the server it measures. Reads one JSON job from
// argv, runs autocannon, prints one JSON result line.

import autocannon from "autocannon";
import { benchChannel } from "./api-fleet.js";

export interface LoadJob {
  url: string;
  /** Path requested; "{channel}" is replaced by a different rocket's channel on every request. */
  path: string;
  connections: number;
  durationSeconds: number;
  /** How many channels {channel} cycles through. */
  channels: number;
  /** A key with the `read` scope, sent as Bearer. */
  key: string;
}

export interface LoadResult {
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  requests: number;
  errors: number;
  non2xx: number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  let next = 0;
  const perChannel = job.path.includes("{channel}");
  const result = await autocannon({
    url: job.url,
    connections: job.connections,
    duration: job.durationSeconds,
    headers: { authorization: `Bearer ${job.key}` },
    requests: [
      {
        method: "GET",
        path: job.path,
        setupRequest: (req) => {
          if (!perChannel) return req;
          // A stride coprime with the count walks every channel in a scattered order.
          next = (next + 7919) % job.channels;
          return { ...req, path: job.path.replace("{channel}", benchChannel(next)) };
        },
      },
    ],
  });
  return {
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const job = JSON.parse(process.argv[2] ?? "{}") as LoadJob;
console.log(JSON.stringify(await run(job)));
