// The HTTP load generator of bench/ingest.ts, run as its own process so that
// it never shares an event loop with the server it measures. Sends unique
// messages (one per request, or `batch` per request as a JSON array) with
// keep-alive connections and no Content-Type (as the rockets test program
// may), and prints one JSON line with the figures.
//
//   node --import tsx bench/ingest-load.ts <url> <connections> <seconds> <batch> <key>
//
// <key> is a key with the `write` scope, sent as Bearer (ingest runs with AUTH=on).

import autocannon from "autocannon";
import { messageSet } from "./ingest-messages.js";

const [url = "", connections = "64", seconds = "10", batch = "1", key] = process.argv.slice(2);
const batchSize = Number(batch);
const set = messageSet();
let next = 0;

function body(): string {
  if (batchSize === 1) return JSON.stringify(set.message(next++));
  const items = [];
  for (let k = 0; k < batchSize; k++) items.push(set.message(next++));
  return JSON.stringify(items);
}

const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  pipelining: 1,
  headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  requests: [{ method: "POST", path: "/messages", setupRequest: (req) => ({ ...req, body: body() }) }],
});

console.log(
  JSON.stringify({
    requests: result.requests.total,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
  }),
);
