// The in-memory reference for bench:e2e: one fastify process that does what
// Rockets does for a message, minus everything that makes it durable and
// distributed. It parses and validates each POST with the domain's own
// validator, sequences it with the domain's own `sequenceBatch` into a per-channel
// state held in a Map (dedup, ordering, gap buffering), and answers 202 the
// moment that is done; GET /rockets/:channel and a paged GET /rockets answer
// from the same Map in the API's shape, so the load program can verify it.
// No broker, no disk, no second process: what bench:e2e prints against it is
// what durability and distribution cost.
// Usage: tsx bench/reference-server.ts <port>; prints "listening" when ready.

import fastify from "fastify";
import { validateMessage } from "../internal/domain/message.js";
import { sequenceBatch } from "../internal/domain/sequence-batch.js";
import { emptyChannelState, type ChannelState } from "../internal/domain/sequencing.js";
import { rocketViewOf } from "../internal/view/rocket-view.js";

const port = Number(process.argv[2] ?? 0);
const channels = new Map<string, ChannelState>();
const app = fastify({ logger: false });

// Like ingest: the body is JSON whatever the Content-Type says.
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
  try {
    done(null, JSON.parse(body as string));
  } catch {
    done(Object.assign(new Error("the body is not JSON"), { statusCode: 400 }), undefined);
  }
});

app.post("/messages", async (request, reply) => {
  const v = validateMessage(request.body);
  if (!v.ok) return reply.code(400).send({ errors: v.problems });
  const channel = v.value.metadata.channel;
  const result = sequenceBatch(channels.get(channel) ?? emptyChannelState(), [v.value], { maxPending: Number.POSITIVE_INFINITY });
  channels.set(channel, result.state);
  return reply.code(202).send({ status: result.outcomes[0] });
});

app.get<{ Params: { channel: string } }>("/rockets/:channel", async (request, reply) => {
  const state = channels.get(request.params.channel);
  const rocket = state ? rocketViewOf(request.params.channel, state) : null;
  return rocket ? rocket : reply.code(404).send({ status: 404 });
});

app.get<{ Querystring: { limit?: string; cursor?: string } }>("/rockets", async (request) => {
  const all = [...channels.entries()].map(([c, s]) => rocketViewOf(c, s)).filter((r) => r !== null);
  const from = Number(request.query.cursor ?? 0);
  const limit = Number(request.query.limit ?? 100);
  const page = all.slice(from, from + limit);
  return { rockets: page, total: all.length, nextCursor: from + limit < all.length ? String(from + limit) : null };
});

await app.listen({ host: "127.0.0.1", port });
process.stdout.write("listening\n");
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
