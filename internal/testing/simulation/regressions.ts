// Runs the simulator found breaking the promise, kept so they stay fixed:
// each failed on the sequencer as it was before its fix (the violation it
// showed is quoted), and must pass on every later change. A profile and a
// seed name one run exactly, for a given simulator (options.ts, load.ts and
// world.ts draw from the seed in a fixed order): `npm run simulate -- --seed
// N --profile P` replays it with its trace. A change to the simulator that
// changes what a seed draws must check that every seed here still fails on
// the sequencer before its fix, and replace those that no longer do.

export interface Regression {
  profile: string;
  seed: number;
  /** What it found, as the checker said it before the fix. */
  found: string;
}

export const REGRESSIONS: readonly Regression[] = [
  {
    profile: "mixed",
    seed: 9,
    found:
      "skip gives up acked messages: with MAX_BUFFERED_MESSAGES=1 the lower parked numbers were not kept in memory, and the skip gave up 3-7 though #4 (seq 16) and #7 (seq 2) had been acked (skip: abffb152: #4 given up as never arrived by revision 14)",
  },
  {
    profile: "skip",
    seed: 281,
    found: "skip gives up acked messages: MAX_PENDING_PER_CHANNEL below the gap's parked count; #4, #5, #6 acked, then given up as never arrived (revision 199)",
  },
  {
    profile: "mixed",
    seed: 38,
    found:
      "a launched rocket's gap left by an instance that crashed is never given up under GAP_POLICY=skip while its channel receives nothing (deadline: a8005e46 still at lastApplied 1 past the deadline)",
  },
  {
    profile: "skip",
    seed: 3043,
    found:
      "a gap written by a former owner after the partition's new owner had scanned the bucket was never reviewed: no deadline skip until a message of the channel arrived (deadline: 29316e67 still at lastApplied 1 past the deadline)",
  },
  {
    profile: "unreadable",
    seed: 2,
    found: "one unreadable entry freezes its partition: its messages are nak'ed forever and fill max_ack_pending (complete: 40fa36d4 ended at lastApplied 0 of 10)",
  },
  {
    profile: "resends",
    seed: 283,
    found:
      "a later copy replaces the first: #13's first copy (seq 61) parked in the stream only, a changed copy (seq 119) held in memory; the gap's re-read kept the memory copy's content (prefix: c387e868 speed 14359, the first copies fold to 13967)",
  },
  {
    profile: "skip",
    seed: 551,
    found:
      "history ignores skipped: once a gap was given up, the API's history of the rocket (folded from the stream) stayed incomplete and folded to a state short of the stored one (history: 970b7849: the history folds to lastApplied 4 ... incomplete, missing 5)",
  },
  {
    profile: "retention",
    seed: 289,
    found: "retention by age removes parked, acked messages that are never applied nor recorded (located: 3864dfc0: #3 (seq 2) was acked, is not applied and is no longer in the stream)",
  },
  {
    profile: "fence",
    seed: 568,
    found:
      "the lease fence trusts the monotonic clock: s2 suspended past its lease resumed believing it fresh and acked #5 and #6 with no state write; nothing reads them back (complete: 1d4c7bad ended at lastApplied 4 of 7)",
  },
  {
    profile: "pauses",
    seed: 283,
    found:
      "a write-less park hidden by a stale owner's write: s4 parked #2-#33 in the stream only; s3, resumed, launched the channel with a create that no write of s4's fenced; the entry locates none of them (located: c4a5de99: #2 (seq 32) acked, not applied, below gap.fromSeq none)",
  },
  {
    profile: "replicas",
    seed: 190,
    found:
      "a stale 'no entry' from a replica: #9 parked in the stream only under MAX_UNLAUNCHED_CHANNELS=1 though the channel had an entry; nothing reads it back (complete: 1c764317 ended at lastApplied 8 of 17)",
  },
  {
    profile: "pauses",
    seed: 322,
    found: "a stale 'no entry' from a replica: #4, the next number, was acked with no write and the rocket waits for it forever (complete: d8dbdb7e ended at lastApplied 3 of 16)",
  },
];
