// Whether the JetStream store nats-server opened is sound, from its own
// monitoring endpoints, so that `npm start` reports a damaged or unreadable
// store at once instead of leaving a service not ready forever.
//
// - /healthz (without js-enabled-only) fails when a stream or consumer could
//   not be recovered from its files, naming it.
// - /jsz?streams=true gives each stream's state; a first sequence beyond the
//   last one plus one cannot happen in a sound stream (an empty stream has
//   first = last + 1), and is what two servers writing one store left behind.

/** Every problem the two answers show; empty when the store looks sound. */
export function storeProblems(healthz, jsz) {
  const problems = [];
  if (healthz && healthz.status !== "ok") {
    problems.push(`nats-server health: ${healthz.error ?? healthz.status ?? JSON.stringify(healthz)}`);
  }
  for (const account of jsz?.account_details ?? []) {
    for (const stream of account.stream_detail ?? []) {
      const s = stream.state ?? {};
      if (Number.isSafeInteger(s.first_seq) && Number.isSafeInteger(s.last_seq) && s.first_seq > s.last_seq + 1) {
        problems.push(
          `stream ${stream.name}: first_seq ${s.first_seq} is past last_seq ${s.last_seq} (messages ${s.messages}): its files contradict each other`,
        );
      }
    }
  }
  return problems;
}

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { status: `HTTP ${res.status}`, error: text.slice(0, 200) };
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Asks the server at `monitorUrl` until the store looks sound or `timeoutMs`
 * passes (a large store may take a moment to recover every stream); resolves
 * with the problems still seen, empty when sound.
 */
export async function checkStore(monitorUrl, { timeoutMs = 3000, stillWanted = () => true } = {}) {
  const deadline = Date.now() + timeoutMs;
  let problems = [];
  while (stillWanted()) {
    try {
      problems = storeProblems(await getJson(`${monitorUrl}/healthz`), await getJson(`${monitorUrl}/jsz?streams=true`));
    } catch (err) {
      problems = [`nats-server monitoring did not answer: ${err.message}`];
    }
    if (problems.length === 0 || Date.now() >= deadline) return problems;
    // nats-server logs every failed health check: a few checks are enough.
    await sleep(1000);
  }
  return problems;
}
