import { describe, expect, it } from "vitest";
import { CHAOS_DEFAULTS, parseChaosFlags } from "./options.js";

function ok(argv: string[]) {
  const r = parseChaosFlags(argv);
  if (!r.ok) throw new Error(r.problems.join("; "));
  return r.options;
}

function problems(argv: string[]) {
  const r = parseChaosFlags(argv);
  if (r.ok) throw new Error("expected problems");
  return r.problems;
}

describe("parseChaosFlags", () => {
  it("runs the issue's scenario by default: R3 cluster faults for 40 s within a 5-minute deadline and a 5 s settle goal", () => {
    expect(ok([])).toEqual(CHAOS_DEFAULTS);
    expect(CHAOS_DEFAULTS).toMatchObject({
      sequencerKillEveryMs: 5000,
      leaderKills: 2,
      ingestKills: 1,
      pauses: 1,
      deadlineMs: 300_000,
      settleGoalMs: 5000,
    });
  });

  it("reads durations, numbers and paths as --name=value or --name value", () => {
    const o = ok(["--fault-window=15s", "--deadline", "2m", "--partitions", "8", "--duplicate-rate=0.1", "--logs", "/tmp/x", "--settle-goal=500ms"]);
    expect(o).toMatchObject({ faultWindowMs: 15_000, deadlineMs: 120_000, partitions: 8, duplicateRate: 0.1, logsDir: "/tmp/x", settleGoalMs: 500 });
    expect(ok(["--require-balance", "--seed", "3"])).toMatchObject({ requireBalance: true, seed: 3 });
    expect(ok(["--require-balance=false"]).requireBalance).toBe(false);
  });

  it("lists every problem at once", () => {
    expect(problems(["--partitions=0", "--fault-window=soon", "--bogus", "stray", "--seed"])).toEqual([
      '--partitions: must be at least 1, got "0"',
      '--fault-window: must be a duration like 500ms, 40s or 5m, got "soon"',
      "unknown flag --bogus",
      'unexpected argument "stray"',
      "--seed: needs a value",
    ]);
  });

  it("refuses a fault window shorter than one sequencer kill interval", () => {
    expect(problems(["--fault-window=3s"])).toEqual(["--fault-window (3s) must be at least --sequencer-kill-every (5s)"]);
  });

  it("says when help was asked for", () => {
    expect(parseChaosFlags(["--help"])).toEqual({ ok: false, problems: [], help: true });
  });
});
