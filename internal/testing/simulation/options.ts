// What one simulated run is made of, drawn from its seed: the deployment's
// settings, the load and the faults. Profiles bend the draw towards a kind of
// trouble (a regression seed names its profile); every knob stays drawn from
// the seed, so a profile and a seed name one run.

import { GapPolicy } from "../../sequencer/channel-actor.js";
import type { SequencerSettings } from "../../sequencer/sequencer.js";
import type { ConsumerSettings } from "../memory-partition-consumer.js";
import { SimRandom } from "./random.js";
import type { NetworkSettings } from "./world.js";

export interface LoadSettings {
  rockets: number;
  /** Most messages one rocket sends (each rocket draws its own count up to this). */
  maxMessages: number;
  /** How long the load (and the faults) last. */
  chaosMs: number;
  /** How far a message may be sent out of order (positions within its rocket). */
  reorderWindow: number;
  /** Chance a send is repeated (the client's retry) within the duplicate window. */
  duplicateRate: number;
  /** Chance a message is sent again after the duplicate window, and how often then with a changed content. */
  lateResendRate: number;
  changedResendRate: number;
  /** Chance a rocket's launch is held back until the end (a channel that never launched meanwhile). */
  unlaunchedRate: number;
  /** Chance a rocket has one number held back until the end (a gap that stays open). */
  gapRate: number;
  /** Chance that a send stores something no valid message is (the worker terminates it). */
  invalidRate: number;
  duplicateWindowMs: number;
}

export interface FaultSettings {
  crashes: number;
  /** Graceful stops (SIGTERM), each followed by a restart. */
  stops: number;
  pauses: number;
  /** Of the pauses, the chance each is a VM suspend (its monotonic clock stands still). */
  suspendRate: number;
  /** Network cuts of one instance. */
  cuts: number;
  /** Entries overwritten with bytes that do not decode. */
  unreadable: number;
  /** Retention: none, by age (ms kept), or by bytes (bytes kept), applied every second. */
  retention: { kind: "none" } | { kind: "age"; maxAgeMs: number } | { kind: "bytes"; maxBytes: number };
  /** Wall-clock skew between instances, up to this many ms either way. */
  maxSkewMs: number;
}

/**
 * A deliberate bug in the world, for the checker's own tests (a checker must
 * be able to fail): `unlocate` raises a written gap's fromSeq past its first
 * parked message; `corrupt` adds 1 to a written rocket's speed.
 */
export type Sabotage = "unlocate" | "corrupt";

export interface SimOptions {
  seed: number;
  profile: string;
  sabotage?: Sabotage;
  partitions: number;
  instances: number;
  sequencer: Omit<SequencerSettings, "instanceId" | "partitions">;
  consumer: ConsumerSettings;
  network: NetworkSettings;
  load: LoadSettings;
  faults: FaultSettings;
}

/** Bends a drawn run towards one kind of trouble. */
type Profile = (o: SimOptions, r: SimRandom) => void;

export const PROFILES: Record<string, Profile> = {
  /** Everything drawn, nothing bent. */
  mixed: () => undefined,
  /** Gaps skipped at a short deadline, small per-channel memory, crashes. */
  skip: (o, r) => {
    o.sequencer.gapPolicy = GapPolicy.Skip;
    o.sequencer.gapDeadlineMs = r.between(2000, 6000);
    o.sequencer.maxPendingPerChannel = r.between(1, 6);
    o.load.gapRate = 0.5;
    o.faults.crashes = Math.max(o.faults.crashes, 1);
  },
  /** Entries that do not decode. */
  unreadable: (o, r) => {
    o.faults.unreadable = r.between(1, 3);
    o.load.rockets = Math.max(o.load.rockets, 6);
  },
  /** Resends after the duplicate window, some changed, and gaps. */
  resends: (o, r) => {
    o.load.duplicateWindowMs = r.between(2000, 5000);
    o.load.lateResendRate = 0.3;
    o.load.changedResendRate = 0.7;
    o.load.gapRate = 0.6;
    o.sequencer.maxPendingPerChannel = r.between(1, 4);
  },
  /** The stream trims by age or bytes while gaps are open. */
  retention: (o, r) => {
    o.faults.retention = r.chance(0.5) ? { kind: "age", maxAgeMs: r.between(3000, 15_000) } : { kind: "bytes", maxBytes: r.between(5_000, 40_000) };
    o.load.gapRate = 0.5;
  },
  /** Never-launched channels past a small bound, several instances, takeovers. */
  unlaunched: (o, r) => {
    o.sequencer.maxUnlaunchedChannels = r.between(0, 2);
    o.load.unlaunchedRate = 0.6;
    o.instances = r.between(2, 3);
    o.faults.crashes = Math.max(o.faults.crashes, 1);
  },
  /** Instances frozen past their lease, some as a VM suspend. */
  pauses: (o, r) => {
    o.faults.pauses = r.between(1, 3);
    o.faults.suspendRate = 0.7;
    o.instances = r.between(2, 3);
    o.sequencer.maxUnlaunchedChannels = r.between(0, 2);
    o.load.unlaunchedRate = 0.5;
  },
  /** The partition owner suspended past its lease (its monotonic clock standing still) while never-launched channels park. */
  fence: (o, r) => {
    o.instances = 2;
    o.faults.pauses = r.between(2, 4);
    o.faults.suspendRate = 1;
    o.faults.crashes = 0;
    o.faults.stops = 0;
    o.sequencer.maxUnlaunchedChannels = 0;
    o.sequencer.heartbeatMs = Math.round(o.sequencer.leaseTtlMs / r.pick([2, 3]));
    o.load.unlaunchedRate = 0.8;
  },
  /** Lagging replicas answer state loads. */
  replicas: (o, r) => {
    o.network.staleLoads = 0.3;
    o.network.replicaLagMs = r.between(200, 3000);
    o.sequencer.maxUnlaunchedChannels = r.between(0, 2);
    o.load.unlaunchedRate = 0.5;
    o.instances = r.between(2, 3);
  },
};

export function optionsFor(seed: number, profile = "mixed"): SimOptions {
  const bend = PROFILES[profile];
  if (!bend) throw new RangeError(`unknown profile "${profile}": one of ${Object.keys(PROFILES).join(", ")}`);
  const r = new SimRandom(seed ^ 0x5eed);
  const leaseTtlMs = r.pick([1500, 3000, 5000]);
  const heartbeatMs = Math.round(leaseTtlMs / r.pick([3, 4, 5]));
  const tiny = r.chance(0.4);
  const o: SimOptions = {
    seed,
    profile,
    partitions: r.between(1, 4),
    instances: r.between(1, 3),
    sequencer: {
      leaseTtlMs,
      heartbeatMs,
      maxPendingPerChannel: tiny ? r.between(1, 5) : r.between(10, 1000),
      retryDelayMs: r.pick([200, 500, 1000]),
      gapPolicy: r.chance(0.5) ? GapPolicy.Skip : GapPolicy.Wait,
      gapDeadlineMs: r.between(3000, 30_000),
      maxBufferedMessages: tiny ? r.between(1, 10) : 200_000,
      maxBufferedBytes: tiny && r.chance(0.3) ? r.between(500, 3000) : 64 * 2 ** 20,
      maxUnlaunchedChannels: r.chance(0.3) ? r.between(0, 3) : 10_000,
      maxActors: r.chance(0.3) ? r.between(1, 8) : 20_000,
      actorIdleMs: r.pick([500, 2000, 60_000]),
      kvConcurrency: r.pick([1, 4, 64]),
      writeLingerMs: r.pick([0, 0, 5, 20]),
      fetchBatch: r.pick([1, 5, 50, 500]),
      fetchExpiresMs: r.pick([1000, 2000]),
      maxInFlightPerPartition: r.pick([2, 20, 1000]),
      lagPollMs: 5000,
    },
    consumer: { ackWaitMs: r.pick([2000, 5000, 10_000]), maxAckPending: r.pick([5, 50, 5000]) },
    network: {
      minLatencyMs: 0.1,
      maxLatencyMs: r.pick([1, 5, 30]),
      timeoutMs: 2000,
      staleLoads: r.chance(0.2) ? 0.2 : 0,
      replicaLagMs: 1000,
      lostAcks: r.chance(0.2) ? 0.05 : 0,
    },
    load: {
      rockets: r.between(2, 10),
      maxMessages: r.between(3, 40),
      chaosMs: r.between(10_000, 30_000),
      reorderWindow: r.pick([0, 3, 10, 30]),
      duplicateRate: r.pick([0, 0.05, 0.2]),
      lateResendRate: r.chance(0.3) ? 0.05 : 0,
      changedResendRate: 0.5,
      unlaunchedRate: r.chance(0.3) ? 0.3 : 0,
      gapRate: r.chance(0.4) ? 0.3 : 0,
      invalidRate: r.chance(0.2) ? 0.02 : 0,
      duplicateWindowMs: r.pick([3000, 10_000, 120_000]),
    },
    faults: {
      crashes: r.between(0, 3),
      stops: r.between(0, 1),
      pauses: r.chance(0.3) ? r.between(1, 2) : 0,
      suspendRate: 0.5,
      cuts: r.chance(0.3) ? r.between(1, 2) : 0,
      unreadable: 0,
      retention: { kind: "none" },
      maxSkewMs: r.pick([0, 0, 500, 3000]),
    },
  };
  bend(o, r);
  return o;
}
