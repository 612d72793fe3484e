import { describe, expect, it } from "vitest";
import { parseBody } from "./body-parser.js";
import { ProblemError } from "../../internal/http/problem-document.js";

const limits = { bodyLimitBytes: 100, batchBodyLimitBytes: 1000 };

function problemOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProblemError) return err.problem;
    throw err;
  }
  throw new Error("expected a ProblemError");
}

describe("parseBody", () => {
  it("parses objects, arrays and scalars", () => {
    expect(parseBody(' {"a":1} ', limits)).toEqual({ a: 1 });
    expect(parseBody("\n[1,2]", limits)).toEqual([1, 2]);
    expect(parseBody("null", limits)).toBeNull();
  });

  it("applies the message limit to anything but an array, and the batch limit to arrays", () => {
    const over = `{"a":"${"x".repeat(100)}"}`;
    expect(problemOf(() => parseBody(over, limits))).toMatchObject({ status: 413, limitBytes: 100 });
    expect(parseBody(` [${over}]`, limits)).toHaveLength(1);
    const overBatch = `[${Array.from({ length: 20 }, () => over).join(",")}]`;
    expect(problemOf(() => parseBody(overBatch, limits))).toMatchObject({ status: 413, limitBytes: 1000 });
  });

  it("counts bytes, not characters", () => {
    const fits = `"${"é".repeat(40)}"`;
    expect(Buffer.byteLength(fits)).toBeLessThanOrEqual(100);
    expect(parseBody(fits, limits)).toBe("é".repeat(40));
    const over = `"${"é".repeat(60)}"`;
    expect(over.length).toBeLessThan(100);
    expect(problemOf(() => parseBody(over, limits))).toMatchObject({ status: 413 });
  });

  it("rejects empty and malformed bodies with 400 not-json", () => {
    for (const text of ["", " \r\n\t", "{", "{'a':1}", "NaN"]) {
      expect(problemOf(() => parseBody(text, limits))).toMatchObject({ status: 400, type: "urn:rockets:problem:not-json" });
    }
  });

  it("never quotes the body in the problem, keeping the position when the parser gives one", () => {
    const quoted = problemOf(() => parseBody('[1,"<script>secret</script>",]', limits));
    expect(quoted.detail).toBe("the request body is not valid JSON");
    expect(problemOf(() => parseBody('{"a":1,secret}', limits)).detail).toBe("the request body is not valid JSON (at position 7)");
  });
});
