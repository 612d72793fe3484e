// The fleet's counts, kept as rockets change rather than rebuilt per request:
// each change adjusts a few counters, and a read builds at most 2 * (topN + 1)
// labels plus two statuses, whatever the number of rockets or of distinct
// types and missions. The built summary is kept until the next change, so
// parallel requests between changes share one object.
//
// Guarantees:
// - Bounded: byType and byMission list the topN largest groups (ties by
//   value), by their real names only; otherTypes and otherMissions count the
//   rockets of the groups not listed, and distinctTypes and distinctMissions
//   how many groups there are in all. (The rest is not a key "other" in
//   byType: a rocket may well have the type "other".)
// - Exact: speeds are safe integers (the domain saturates a speed at
//   Number.MAX_SAFE_INTEGER), but 50,000 of them can sum past 2^53, so the sum
//   is a BigInt; the mean is computed from that exact sum (integer quotient
//   plus the remainder's fraction), so it never drifts: 500 and 0 average 250
//   however many rockets came and went before.
// - User text is never an object key outside a null-prototype record, so
//   "__proto__" counts like any other type or mission.

import { RocketStatus } from "../domain/rocket.js";
import { LabelCounts, type TopCounts } from "./label-counts.js";
import type { RocketView } from "./rocket-view.js";

/** Default number of types and of missions a summary lists by name. */
export const DEFAULT_SUMMARY_TOP_LABELS = 20;

export interface Summary {
  total: number;
  /** Rockets with messages waiting behind a gap. */
  waitingOnGaps: number;
  byStatus: Record<string, number>;
  /** The largest groups by type (at most topLabels), null prototype. */
  byType: Record<string, number>;
  /** The largest groups by mission (at most topLabels), null prototype. */
  byMission: Record<string, number>;
  /** Rockets whose type byType does not list. */
  otherTypes: number;
  /** Rockets whose mission byMission does not list. */
  otherMissions: number;
  /** Distinct types in the fleet (byType may list fewer). */
  distinctTypes: number;
  /** Distinct missions in the fleet (byMission may list fewer). */
  distinctMissions: number;
  /** Exact sum of every rocket's speed, in decimal (it can pass 2^53). */
  totalSpeed: string;
  /** Mean speed over all rockets, from the exact sum; null when there are none. */
  averageSpeed: number | null;
}

/** The exact mean of integers summing to `sum`, to double precision. */
export function exactMean(sum: bigint, count: number): number {
  const n = BigInt(count);
  return Number(sum / n) + Number(sum % n) / count;
}

export class IncrementalSummary {
  private readonly byStatus = new Map<string, number>();
  private readonly types = new LabelCounts();
  private readonly missions = new LabelCounts();
  private total = 0;
  private waiting = 0;
  private speedSum = 0n;
  private built: Summary | undefined;
  private visited = 0;

  /** @param topLabels types and missions listed by name (at least 0). */
  constructor(private readonly topLabels = DEFAULT_SUMMARY_TOP_LABELS) {}

  /** Label entries visited by every summary built so far: what reads cost, for tests and benchmarks. */
  get labelsVisited(): number {
    return this.visited;
  }

  add(rocket: RocketView): void {
    this.count(rocket, 1);
  }

  remove(rocket: RocketView): void {
    this.count(rocket, -1);
  }

  /** One rocket changed from `before` to `after`: labels that stayed are not touched (most changes are speeds). */
  replace(before: RocketView, after: RocketView): void {
    this.built = undefined;
    this.byStatus.set(before.status, this.byStatus.get(before.status)! - 1);
    this.byStatus.set(after.status, (this.byStatus.get(after.status) ?? 0) + 1);
    this.waiting += Number(after.pendingMessages > 0) - Number(before.pendingMessages > 0);
    this.speedSum += BigInt(after.speed) - BigInt(before.speed);
    if (before.type !== after.type) {
      this.types.remove(before.type);
      this.types.add(after.type);
    }
    if (before.mission !== after.mission) {
      this.missions.remove(before.mission);
      this.missions.add(after.mission);
    }
  }

  read(): Summary {
    if (this.built) return this.built;
    const byStatus: Record<string, number> = Object.create(null) as Record<string, number>;
    // Both statuses always appear, so a dashboard reads 0 rather than a missing key.
    for (const status of Object.values(RocketStatus)) byStatus[status] = this.byStatus.get(status) ?? 0;
    const types = this.labelled(this.types);
    const missions = this.labelled(this.missions);
    this.built = {
      total: this.total,
      waitingOnGaps: this.waiting,
      byStatus,
      byType: types.top,
      byMission: missions.top,
      otherTypes: types.rest,
      otherMissions: missions.rest,
      distinctTypes: this.types.distinct,
      distinctMissions: this.missions.distinct,
      totalSpeed: this.speedSum.toString(),
      averageSpeed: this.total === 0 ? null : exactMean(this.speedSum, this.total),
    };
    return this.built;
  }

  private labelled(counts: LabelCounts): TopCounts {
    const top = counts.top(this.topLabels, this.total);
    this.visited += top.visited;
    return top;
  }

  private count(rocket: RocketView, delta: 1 | -1): void {
    this.built = undefined;
    this.total += delta;
    this.byStatus.set(rocket.status, (this.byStatus.get(rocket.status) ?? 0) + delta);
    if (rocket.pendingMessages > 0) this.waiting += delta;
    this.speedSum += BigInt(delta) * BigInt(rocket.speed);
    if (delta === 1) {
      this.types.add(rocket.type);
      this.missions.add(rocket.mission);
    } else {
      this.types.remove(rocket.type);
      this.missions.remove(rocket.mission);
    }
  }
}
