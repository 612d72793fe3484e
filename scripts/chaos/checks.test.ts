import { describe, expect, it } from "vitest";
import { compareStoredIds, isBalanced, ownershipProblems, replicaDrift, type NodeView, type ReplicaState } from "./checks.js";

describe("ownershipProblems", () => {
  it("accepts every partition owned exactly once, however unevenly", () => {
    expect(
      ownershipProblems(
        [
          { label: "seq-1", partitions: [0, 2], up: true },
          { label: "seq-2", partitions: [1, 3], up: true },
          { label: "seq-3", partitions: [], up: false },
        ],
        4,
      ),
    ).toEqual([]);
  });

  it("names partitions without an owner and partitions owned twice, with their owners", () => {
    expect(ownershipProblems([{ label: "seq-1", partitions: [0, 1], up: true }, { label: "seq-2", partitions: [1, 9], up: true }], 4)).toEqual([
      "partitions without an owner: 2, 3",
      "partitions owned more than once: 1 (seq-1 and seq-2)",
      "partitions that do not exist: 9",
    ]);
  });
});

describe("isBalanced", () => {
  const owned = (...counts: (number | null)[]) =>
    counts.map((c, i) => ({ label: `seq-${i + 1}`, partitions: Array.from({ length: c ?? 0 }, (_, p) => p), up: c !== null }));

  it("holds when the shares of the sequencers that are up differ by at most one", () => {
    expect(isBalanced(owned(6, 5, 5))).toBe(true);
    expect(isBalanced(owned(8, null, 8))).toBe(true);
  });

  it("fails when they differ by more", () => {
    expect(isBalanced(owned(8, 2, 6))).toBe(false);
    expect(isBalanced(owned(16, 0, null))).toBe(false);
  });
});

describe("compareStoredIds", () => {
  it("finds sent messages missing from the stream, messages stored twice and messages nobody sent", () => {
    const stored = new Map([
      ["a:1", 1],
      ["a:2", 2],
      ["b:1", 1],
    ]);
    expect(compareStoredIds(stored, new Set(["a:1", "a:2", "a:3"]))).toEqual({ missing: ["a:3"], duplicated: ["a:2 x2"], unexpected: ["b:1"] });
    expect(compareStoredIds(new Map([["a:1", 1]]), new Set(["a:1"]))).toEqual({ missing: [], duplicated: [], unexpected: [] });
  });
});

describe("replicaDrift", () => {
  const state = (messages: number, first_seq: number, last_seq: number): ReplicaState => ({ messages, first_seq, last_seq });
  const view = (node: string, streams: Record<string, [ReplicaState, string | undefined]>): NodeView => ({
    node,
    streams: new Map(Object.entries(streams).map(([name, [s, leader]]) => [name, { state: s, leader }])),
  });

  it("accepts replicas that agree with their leader", () => {
    const views = ["n1", "n2", "n3"].map((n) => view(n, { KV_x: [state(5, 3, 9), "n2"] }));
    expect(replicaDrift(views, ["KV_x"])).toEqual([]);
  });

  it("reports a replica whose revisions drifted from the leader's even with the same number of entries", () => {
    const views = [view("n1", { KV_x: [state(5, 3, 9), "n2"] }), view("n2", { KV_x: [state(5, 3, 9), "n2"] }), view("n3", { KV_x: [state(5, 4, 11), "n2"] })];
    expect(replicaDrift(views, ["KV_x"])).toEqual(["KV_x: n3 has messages 5, seq 4..11, leader n2 messages 5, seq 3..9"]);
  });

  it("reports a node without a replica and a stream without a leader", () => {
    const views = [view("n1", { KV_x: [state(1, 1, 1), "n1"], S: [state(0, 0, 0), undefined] }), view("n2", { S: [state(0, 0, 0), undefined] })];
    expect(replicaDrift(views, ["KV_x", "S"])).toEqual(["KV_x: n2 has no replica", "S: no leader"]);
  });
});
