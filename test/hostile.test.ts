// The hostile suite's short variant (scripts/hostile, profile SHORT): every
// attack of issue 14 at a size that runs in seconds, against the real system
// on loopback, with legit rockets in every partition measured throughout.
// Each attack must pass the same bounds as the full run: legit p99 <= 1 s
// with no update lost from view, every legit rocket exact, every process
// under its Kubernetes memory limit, and the attack's own checks.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ATTACKS } from "../scripts/hostile/attacks.js";
import { SHORT } from "../scripts/hostile/profile.js";
import { reportTable } from "../scripts/hostile/report.js";
import { runHostile, type AttackResult } from "../scripts/hostile/run.js";

describe("hostile traffic (short)", () => {
  let results: AttackResult[] = [];
  beforeAll(async () => {
    results = await runHostile(SHORT);
  }, 120_000);
  afterAll(() => {
    if (results.length > 0) console.info(reportTable(results));
  });

  for (const attack of ATTACKS) {
    it(`(${attack.key}) ${attack.title}: legit rockets in every partition keep updating within 1 s, exactly, in bounded memory`, () => {
      const r = results.find((x) => x.key === attack.key);
      expect(r, "the attack ran").toBeDefined();
      const failed = r!.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      expect(failed).toEqual([]);
    });
  }
});
