import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SortedList } from "./sorted-list.js";

const byNumber = (a: number, b: number) => a - b;

type Op = { add: boolean; value: number };
const opsArb = fc.array(
  fc.record({ add: fc.boolean(), value: fc.integer({ min: 0, max: 300 }) }),
  { maxLength: 600 },
);

/** Applies the ops to a SortedList with small chunks (so splits and merges happen) and to a plain set. */
function build(ops: Op[]): { list: SortedList<number>; reference: number[] } {
  const list = new SortedList<number>(byNumber, 4);
  const present = new Set<number>();
  for (const op of ops) {
    if (op.add && !present.has(op.value)) {
      list.insert(op.value);
      present.add(op.value);
    } else if (!op.add) {
      expect(list.remove(op.value)).toBe(present.delete(op.value));
    }
  }
  return { list, reference: [...present].sort(byNumber) };
}

function collect(list: SortedList<number>, from: ReturnType<SortedList<number>["start"]>, forward: boolean, max = Infinity): number[] {
  const out: number[] = [];
  list.walk(from, forward, (v) => {
    out.push(v);
    return out.length < max;
  });
  return out;
}

describe("SortedList", () => {
  it("stays sorted and holds exactly what was inserted and not removed", () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const { list, reference } = build(ops);
        expect(list.toArray()).toEqual(reference);
        expect(list.size).toBe(reference.length);
        expect(collect(list, list.start(), true)).toEqual(reference);
        expect(collect(list, list.end(), false)).toEqual([...reference].reverse());
      }),
    );
  });

  it("walks from any point, forwards after it and backwards before it", () => {
    fc.assert(
      fc.property(opsArb, fc.integer({ min: -1, max: 301 }), fc.integer({ min: 1, max: 20 }), (ops, probe, max) => {
        const { list, reference } = build(ops);
        expect(collect(list, list.seek(probe, true), true, max)).toEqual(reference.filter((v) => v > probe).slice(0, max));
        expect(collect(list, list.seek(probe, false), true, max)).toEqual(reference.filter((v) => v >= probe).slice(0, max));
        expect(collect(list, list.seek(probe, false), false, max)).toEqual(
          reference.filter((v) => v < probe).reverse().slice(0, max),
        );
      }),
    );
  });

  it("reports a removal of something absent as false", () => {
    const list = new SortedList<number>(byNumber);
    expect(list.remove(1)).toBe(false);
    list.insert(2);
    expect(list.remove(1)).toBe(false);
    expect(list.toArray()).toEqual([2]);
  });
});
