// HTTP for the hostile suite: every request it makes goes through here, from
// a chosen loopback address, so that legit traffic (127.0.0.1) and each
// attacker (127.0.0.x) are different clients to the per-address limits, as
// they would be on a network. Linux routes all of 127.0.0.0/8 to loopback, so
// binding a local address needs no setup; nothing leaves the machine.
//
// requestHeaders() is the one place request headers are built. Every
// request carries a key: by default the test harness's operator key, which
// the system the suite starts accepts (AUTH=on, internal/testing/api-keys.ts);
// another can be given once (HOSTILE_API_KEY, or --key).

import http from "node:http";
import { TEST_KEYS } from "../../internal/testing/api-keys.js";

export const LEGIT_ADDRESS = "127.0.0.1";

/** A distinct loopback source address per attacker, so one attack's limits never fall on another. */
export function attackerAddress(index: number): string {
  return `127.0.0.${10 + index}`;
}

let apiKey: string | undefined = TEST_KEYS.operator;

/** Sets the key every request carries from now on (undefined: none). */
export function useApiKey(key: string | undefined): void {
  apiKey = key === "" ? undefined : key;
}

/** The headers of every request the suite makes: the key when there is one, plus `extra`. */
export function requestHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }), ...extra };
}

export interface Answer {
  status: number;
  body: string;
}

const agents = new Map<string, http.Agent>();

/** A keep-alive agent per source address (readers keep connections, as a dashboard does). */
function agentFor(localAddress: string): http.Agent {
  let agent = agents.get(localAddress);
  if (!agent) agents.set(localAddress, (agent = new http.Agent({ keepAlive: true, maxSockets: 64, localAddress })));
  return agent;
}

/** Closes every kept-alive connection. */
export function closeAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

export interface RequestOptions {
  method?: string;
  body?: string;
  from?: string;
  /** A new connection for this request only (as the operators' program posts). */
  fresh?: boolean;
  timeoutMs?: number;
}

/** One request; a refused connection or a timeout rejects. */
export function request(url: string, options: RequestOptions = {}): Promise<Answer> {
  const from = options.from ?? LEGIT_ADDRESS;
  const body = options.body;
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? (body === undefined ? "GET" : "POST"),
        headers: requestHeaders(body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }),
        ...(options.fresh ? { agent: false, localAddress: from } : { agent: agentFor(from) }),
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timed out after ${options.timeoutMs ?? 10_000} ms: ${url}`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** POSTs until a 2xx, every `retryMs`, as the operators' program does; resolves with the answer and how many tries it took. */
export async function postUntilAccepted(url: string, body: string, from: string, retryMs = 100, signal?: AbortSignal): Promise<{ answer: Answer; tries: number }> {
  for (let tries = 1; ; tries += 1) {
    try {
      const answer = await request(url, { body, from, fresh: true });
      if (answer.status >= 200 && answer.status < 300) return { answer, tries };
    } catch {
      // refused or timed out: sent again, like any non-2xx
    }
    if (signal?.aborted) throw new Error("aborted");
    await new Promise((r) => setTimeout(r, retryMs));
  }
}
