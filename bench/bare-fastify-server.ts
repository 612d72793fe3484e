// The firehose goal's yardstick for bench:ingest (issue 11): a bare fastify
// route that only parses the JSON body of POST /messages (any content type,
// as ingest accepts) and answers 202, with nothing checked or kept. Ingest's
// CPU per single-message request is compared with this one's in the same run.
// Usage: tsx bench/bare-fastify-server.ts <port>; prints "listening" when ready.

import Fastify from "fastify";

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => {
  try {
    done(null, JSON.parse(body as string));
  } catch (err) {
    done(err as Error, undefined);
  }
});
app.post("/messages", async (_request, reply) => reply.code(202).send({ status: "accepted" }));
await app.listen({ host: "127.0.0.1", port });
process.stdout.write("listening\n");
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
