// The ChannelStates rules (channel-states.ts), held against both
// implementations: the JetStream KV state bucket on a real nats-server, and
// the in-memory bucket the actor and registry unit tests run on. A rule the
// memory bucket broke would let those unit tests pass against an actor that
// fails on NATS.

import { expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { apply } from "../domain/rocket.js";
import type { ChannelState } from "../domain/sequencing.js";
import { ChannelStateStore } from "../nats/channel-state-store.js";
import { openBucket } from "../nats/topology.js";
import { MemoryChannelStates } from "../testing/memory-channel-states.js";
import { describeContract, NatsContractServer, type ContractSubject } from "../testing/contract.js";
import { rocketMessages, Rng } from "../testing/rocket-traffic.js";
import { RevisionConflictError, StateDecodeError, StateStoreFullError, type ChannelStates, type Quarantine, type RecordedGap } from "./channel-states.js";
import { encodeChannelState, UNLAUNCHED_PREFIX } from "./state-encoding.js";

interface Subject extends ContractSubject {
  /** A fresh, empty bucket. */
  fresh(options?: { maxBytes?: number }): Promise<ChannelStates>;
}

const natsSubject: Subject = (() => {
  const server = new NatsContractServer();
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let n = 0;
  return {
    async setUp() {
      const nc = await server.start();
      js = jetstream(nc);
      jsm = await jetstreamManager(nc);
    },
    tearDown: () => server.stop(),
    async fresh(options = {}) {
      n += 1;
      const bucket = `states_contract_${n}`;
      return new ChannelStateStore(await openBucket(new Kvm(js), bucket, 1, options), { js, jsm, bucket });
    },
  };
})();

const memorySubject: Subject = {
  async fresh(options = {}) {
    return new MemoryChannelStates(options);
  },
};

/** The channel's rocket after its first `n` messages. */
function launchedAs(channel: string, n = 1): ChannelState {
  const rocket = rocketMessages(channel, n, new Rng(1)).reduce<ChannelState["rocket"]>((r, m) => apply(r, m), null);
  return { rocket, lastApplied: n, pending: [] };
}
const gapSince = "2026-01-01T00:00:00.000Z";
const unlaunched: ChannelState = { rocket: null, lastApplied: 0, pending: [], gap: { fromSeq: 7, parked: 1, since: gapSince } };
/** The state's encoding padded with trailing spaces (still the same JSON) to `size` bytes. */
const paddedTo = (size: number) => (state: ChannelState) => {
  const bytes = encodeChannelState(state);
  return Buffer.concat([bytes, Buffer.alloc(Math.max(0, size - bytes.byteLength), " ")]);
};

describeContract(
  "ChannelStates contract",
  [
    ["JetStream KV bucket", natsSubject],
    ["in-memory bucket", memorySubject],
  ],
  (subject) => {
    it("creates only while absent, saves only at the revision read, and loads what was written", async () => {
      const store = await subject.fresh();
      expect(await store.load("a")).toBeNull();
      const r1 = await store.save("a", launchedAs("a"), 0, encodeChannelState);
      expect(r1).toBeGreaterThan(0);
      expect(await store.load("a")).toEqual({ state: launchedAs("a"), revision: r1 });
      await expect(store.save("a", launchedAs("a", 2), 0, encodeChannelState)).rejects.toBeInstanceOf(RevisionConflictError);
      await expect(store.save("a", launchedAs("a", 2), r1 + 100, encodeChannelState)).rejects.toBeInstanceOf(RevisionConflictError);
      const r2 = await store.save("a", launchedAs("a", 2), r1, encodeChannelState);
      expect(r2).toBeGreaterThan(r1);
      const stale = await store.save("a", launchedAs("a"), r1, encodeChannelState).catch((err: unknown) => err);
      expect(stale).toBeInstanceOf(RevisionConflictError);
      expect(stale).toMatchObject({ channel: "a", expectedRevision: r1 });
      expect(await store.load("a")).toEqual({ state: launchedAs("a", 2), revision: r2 });
    });

    it("numbers revisions across the whole bucket", async () => {
      const store = await subject.fresh();
      const a = await store.save("a", launchedAs("a"), 0, encodeChannelState);
      const b = await store.save("b", launchedAs("b"), 0, encodeChannelState);
      const a2 = await store.save("a", launchedAs("a", 2), a, encodeChannelState);
      expect(b).toBeGreaterThan(a);
      expect(a2).toBeGreaterThan(b);
    });

    it("removes only at the revision read; a removed channel loads as deleted at its marker, written again only at that revision", async () => {
      const store = await subject.fresh();
      const r1 = await store.save("gone", launchedAs("gone"), 0, encodeChannelState);
      const r2 = await store.save("gone", launchedAs("gone", 2), r1, encodeChannelState);
      await expect(store.remove("gone", r1)).rejects.toBeInstanceOf(RevisionConflictError);
      expect((await store.load("gone"))?.revision).toBe(r2);
      await store.remove("gone", r2);
      const removed = await store.load("gone");
      expect(removed).toEqual({ state: { rocket: null, lastApplied: 0, pending: [] }, revision: expect.any(Number), deleted: true });
      expect(removed!.revision).toBeGreaterThan(r2);
      expect(await store.load("gone", { latest: true })).toEqual(removed);
      // Not as if never written: an entry that came and went cannot be written over from a read that saw none.
      await expect(store.save("gone", launchedAs("gone"), 0, encodeChannelState)).rejects.toBeInstanceOf(RevisionConflictError);
      const r3 = await store.save("gone", launchedAs("gone"), removed!.revision, encodeChannelState);
      expect(await store.load("gone")).toEqual({ state: launchedAs("gone"), revision: r3 });
    });

    it("loads an entry that is not a valid state as a StateDecodeError", async () => {
      const store = await subject.fresh();
      await store.save("not-json", launchedAs("not-json"), 0, () => Buffer.from("{nope"));
      await expect(store.load("not-json")).rejects.toBeInstanceOf(StateDecodeError);
      // A launched rocket stored under another channel's key.
      await store.save("elsewhere", launchedAs("another-channel"), 0, encodeChannelState);
      const err = await store.load("elsewhere").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateDecodeError);
      expect((err as StateDecodeError).problems.map((p) => p.path)).toEqual(["rocket.channel"]);
    });

    it("refuses a write past its max bytes with StateStoreFullError, changing nothing; a replacement no larger still lands", async () => {
      const store = await subject.fresh({ maxBytes: 8192 });
      const r1 = await store.save("a", launchedAs("a"), 0, paddedTo(2000));
      await store.save("b", launchedAs("b"), 0, paddedTo(2000));
      await store.save("c", launchedAs("c"), 0, paddedTo(2000));
      const full = await store.save("d", launchedAs("d"), 0, paddedTo(2000)).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(StateStoreFullError);
      expect(full).toMatchObject({ channel: "d" });
      expect(await store.load("d")).toBeNull();
      await expect(store.save("a", launchedAs("a", 2), r1, paddedTo(4000))).rejects.toBeInstanceOf(StateStoreFullError);
      expect(await store.load("a")).toEqual({ state: launchedAs("a"), revision: r1 });
      const r2 = await store.save("a", launchedAs("a", 2), r1, paddedTo(1990));
      expect(await store.load("a")).toEqual({ state: launchedAs("a", 2), revision: r2 });
    });

    it("scans for every channel whose entry records a gap, launched or not, skipping gapless, invalid and removed entries", async () => {
      const store = await subject.fresh();
      await store.save("launched", launchedAs("launched"), 0, encodeChannelState);
      await store.save("waiting-1", unlaunched, 0, encodeChannelState);
      await store.save("gapless", { rocket: null, lastApplied: 0, pending: [] }, 0, encodeChannelState);
      await store.save("invalid", launchedAs("invalid"), 0, () => Buffer.concat([UNLAUNCHED_PREFIX, Buffer.from(`"gap":{nope`)]));
      const removed = await store.save("removed", unlaunched, 0, encodeChannelState);
      await store.remove("removed", removed);
      await store.save("launched-gap", { ...launchedAs("launched-gap"), gap: { fromSeq: 9, parked: 2, since: gapSince } }, 0, encodeChannelState);
      await store.save("waiting-2", unlaunched, 0, encodeChannelState);
      const found: Array<[string, RecordedGap]> = [];
      await store.scanGaps!((channel, gap) => found.push([channel, gap]));
      expect(found).toEqual([
        ["waiting-1", { since: Date.parse(gapSince), fromSeq: unlaunched.gap!.fromSeq, launched: false }],
        ["launched-gap", { since: Date.parse(gapSince), fromSeq: 9, launched: true }],
        ["waiting-2", { since: Date.parse(gapSince), fromSeq: unlaunched.gap!.fromSeq, launched: false }],
      ]);
      const aborted = new AbortController();
      aborted.abort();
      const none: string[] = [];
      await store.scanGaps!((channel) => none.push(channel), aborted.signal);
      expect(none).toEqual([]);
    });

    it("hands an entry that does not decode over with its revision and bytes, and replaces it with a quarantine record only at that revision", async () => {
      const store = await subject.fresh();
      const planted = await store.save("spoiled", launchedAs("spoiled"), 0, () => Buffer.from("{nope"));
      const err = (await store.load("spoiled").catch((e: unknown) => e)) as StateDecodeError;
      expect(err).toBeInstanceOf(StateDecodeError);
      expect(err.revision).toBe(planted);
      expect(Buffer.from(err.raw!).toString()).toBe("{nope");
      const record: Quarantine = { fromSeq: 42, since: gapSince, problems: [{ path: "", reason: "is not JSON" }], original: Buffer.from("{nope").toString("base64") };
      await expect(store.quarantine("spoiled", record, planted - 1)).rejects.toBeInstanceOf(RevisionConflictError);
      const revision = await store.quarantine("spoiled", record, planted);
      const loaded = await store.load("spoiled", { latest: true });
      expect(loaded).toEqual({ state: { rocket: null, lastApplied: 0, pending: [] }, revision, quarantine: record });
      // Readers that only understand states (the API's view) see it as unreadable.
      expect(await store.load("spoiled")).toMatchObject({ quarantine: record });
      const next = await store.save("spoiled", launchedAs("spoiled"), revision, encodeChannelState);
      expect(await store.load("spoiled", { latest: true })).toEqual({ state: launchedAs("spoiled"), revision: next });
    });
  },
);
