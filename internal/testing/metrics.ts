// Reading a service's /metrics the way Prometheus would, for tests that
// check what a scrape reports: with the key Prometheus would hold (scope
// `metrics`).

import { bearer, TEST_KEYS } from "./api-keys.js";

/** A service's /metrics text, fetched with the test scraper key; throws unless 200. */
export async function scrape(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: bearer(TEST_KEYS.scraper) });
  if (!res.ok) throw new Error(`GET ${baseUrl}/metrics answered ${res.status}: ${await res.text()}`);
  return res.text();
}

/** Sums a Prometheus metric's samples whose labels include `labels`. */
export async function metricValue(baseUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await scrape(baseUrl);
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}
