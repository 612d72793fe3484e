// One POST on a fresh TCP connection, written by hand: the request line,
// Host, Authorization (when given), Content-Length and `Connection: close`, then the body - no
// Content-Type, as the operators' test program may send. It costs about half
// the client CPU of http.request with a throwaway agent, which matters when
// the load program shares two cores with the system it measures.
//
// Only the status line is parsed; the attempt ends when the server closes the
// connection (as `Connection: close` asks), so the TIME_WAIT stays on the
// server's side and a long run does not exhaust the client's ephemeral ports.

import net from "node:net";

export type Attempt = { ok: true } | { ok: false; why: string };

export interface PostTarget {
  host: string;
  port: number;
  head: Buffer;
}

export function postTarget(url: URL, contentLength: number, authorization?: string): PostTarget {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const head =
    `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    (authorization === undefined ? "" : `Authorization: ${authorization}\r\n`) +
    `Content-Length: ${contentLength}\r\nConnection: close\r\n\r\n`;
  return { host, port: Number(url.port || 80), head: Buffer.from(head, "latin1") };
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;
const MAX_HEAD = 8192;
/** How long to wait for the server's FIN once its response head is in. */
const LINGER_MS = 1000;

export function postOnNewConnection(url: URL, body: Buffer, timeoutMs: number, authorization?: string): Promise<Attempt> {
  const target = postTarget(url, body.length, authorization);
  return new Promise((resolve) => {
    let settled = false;
    let head = "";
    let status = 0;
    let lingering: NodeJS.Timeout | undefined;
    const socket = net.connect({ host: target.host, port: target.port });
    const finish = (attempt: Attempt) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(lingering);
      socket.destroy();
      resolve(attempt);
    };
    const timer = setTimeout(() => finish({ ok: false, why: "timeout" }), timeoutMs);
    socket.setNoDelay(true);
    socket.once("connect", () => socket.write(Buffer.concat([target.head, body])));
    const judge = () => finish(status >= 200 && status < 300 ? { ok: true } : { ok: false, why: String(status) });
    socket.on("data", (chunk: Buffer) => {
      if (lingering) return;
      head += chunk.toString("latin1", 0, Math.min(chunk.length, MAX_HEAD));
      const m = STATUS_LINE.exec(head);
      if (m) status = Number(m[1]);
      else if (head.length >= 16) return finish({ ok: false, why: "not HTTP" });
      // A server that keeps the connection open despite `Connection: close`
      // has still answered: judge by its status after a short wait for its FIN.
      if (status !== 0 && (head.includes("\r\n\r\n") || head.length >= MAX_HEAD)) {
        lingering = setTimeout(judge, LINGER_MS);
      }
    });
    // The server closed after its response: close our side too, then judge by the status.
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      clearTimeout(lingering);
      if (status === 0) return finish({ ok: false, why: "no response" });
      judge();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => finish({ ok: false, why: err.code ?? err.message }));
  });
}
