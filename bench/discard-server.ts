// The baseline for bench:e2e: an HTTP server that reads each request body and
// answers 202 with nothing done, like a service that does no work at all. Run
// as its own process so it does not share an event loop with the load.
// Usage: tsx bench/discard-server.ts <port>; prints "listening" when ready.

import http from "node:http";

const port = Number(process.argv[2] ?? 0);
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(202, { "content-type": "application/json" }).end('{"status":"accepted"}'));
});
server.listen(port, "127.0.0.1", () => process.stdout.write("listening\n"));
process.once("SIGTERM", () => server.close(() => process.exit(0)));
