// The simulator itself: a seed replays its run exactly, the runs that once
// found a loss stay fixed, and the checker fails when the world is made to
// lose or corrupt (a checker that cannot fail proves nothing).

import { describe, expect, it } from "vitest";
import { optionsFor } from "./options.js";
import { REGRESSIONS } from "./regressions.js";
import { simulate } from "./run.js";

describe("simulation", () => {
  it("replays a seed exactly: the same trace, the same result", async () => {
    const options = optionsFor(7, "pauses");
    const first = await simulate(options, { trace: true });
    const second = await simulate(options, { trace: true });
    expect(first.trace!.length).toBeGreaterThan(100);
    expect(second.trace).toEqual(first.trace);
    expect(second.stats).toEqual(first.stats);
  });

  it.each(REGRESSIONS.map((r) => [`${r.profile} ${r.seed}`, r] as const))("keeps fixed what seed %s found", async (_name, regression) => {
    const result = await simulate(optionsFor(regression.seed, regression.profile));
    expect(result.violations, regression.found).toEqual([]);
  });

  it("finds a parked message the stored gap no longer locates", async () => {
    const result = await simulate({ ...optionsFor(281, "skip"), sabotage: "unlocate" });
    expect(result.ok).toBe(false);
    expect(result.violations.map((v) => v.invariant)).toContain("located");
  });

  it("finds a state that is not the fold of the first copies", async () => {
    const result = await simulate({ ...optionsFor(1), sabotage: "corrupt" });
    expect(result.ok).toBe(false);
    expect(result.violations.map((v) => v.invariant)).toContain("prefix");
  });
});
