// POST bodies are JSON whatever the Content-Type says, including none at all
// (the rockets test program may send none): every request body goes through
// this one parser. A single message may be up to bodyLimitBytes; a batch (a
// body whose first token is `[`) up to batchBodyLimitBytes, since it carries
// up to MAX_BATCH messages.

import type { FastifyInstance, FastifyRequest } from "fastify";
import { problem, ProblemError, ProblemType } from "../../internal/http/problem-document.js";

export interface BodyLimits {
  bodyLimitBytes: number;
  batchBodyLimitBytes: number;
}

const isJsonWhitespace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const OPEN_BRACKET = 0x5b;

export function tooLarge(limitBytes: number): ProblemError {
  return new ProblemError(
    problem(413, ProblemType.bodyTooLarge, "Body too large", `the request body exceeds the limit of ${limitBytes} bytes`, {
      limitBytes,
    }),
  );
}

/** Parses `text` as JSON, enforcing the limit of its kind (message or batch). */
export function parseBody(text: string, limits: BodyLimits): unknown {
  let start = 0;
  while (start < text.length && isJsonWhitespace(text.charCodeAt(start))) start++;
  if (start === text.length) {
    throw new ProblemError(problem(400, ProblemType.notJson, "Body is not JSON", "the request body is empty"));
  }
  const limit = text.charCodeAt(start) === OPEN_BRACKET ? limits.batchBodyLimitBytes : limits.bodyLimitBytes;
  // Each UTF-16 unit is 1 to 3 UTF-8 bytes: count the bytes only when the limit could be exceeded.
  if (text.length * 3 > limit && Buffer.byteLength(text, "utf8") > limit) throw tooLarge(limit);
  try {
    return JSON.parse(text);
  } catch (err) {
    // The parser's message may quote the body; only the position is kept, so a problem never echoes input.
    const position = /at position (\d+)/.exec((err as Error).message)?.[1];
    const where = position === undefined ? "" : ` (at position ${position})`;
    throw new ProblemError(problem(400, ProblemType.notJson, "Body is not JSON", `the request body is not valid JSON${where}`));
  }
}

/** Replaces every content-type parser with the JSON-whatever-the-header parser. */
export function registerBodyParser(app: FastifyInstance, limits: BodyLimits): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    "*",
    { parseAs: "string", bodyLimit: Math.max(limits.bodyLimitBytes, limits.batchBodyLimitBytes) },
    (_request, body, done) => {
      try {
        done(null, parseBody(body as string, limits));
      } catch (err) {
        done(err as Error, undefined);
      }
    },
  );
}

/**
 * An onRequest hook for routes whose body is JSON whatever the header says:
 * dropping the header sends even a malformed Content-Type (which Fastify
 * would answer with 415) to the catch-all parser.
 */
export function ignoreContentType(request: FastifyRequest, _reply: unknown, done: () => void): void {
  request.headers["content-type"] = undefined;
  done();
}
