// The fixed seed set `npm test` runs through the simulator: every profile in
// turn, in chunks, each chunk one test that names the command replaying any
// run that fails. The set grows by adding ranges (never by changing one).

import { expect, it } from "vitest";
import { optionsFor, PROFILES } from "./options.js";
import { simulate } from "./run.js";

const CHUNK = 100;

/** One test per CHUNK seeds of [from, to], the profiles taken in turn. */
export function seedRange(from: number, to: number): void {
  const profiles = Object.keys(PROFILES);
  for (let start = from; start <= to; start += CHUNK) {
    const end = Math.min(to, start + CHUNK - 1);
    it(`keeps every invariant for seeds ${start}..${end} (every profile in turn)`, async () => {
      const failures: string[] = [];
      for (let seed = start; seed <= end; seed += 1) {
        const profile = profiles[seed % profiles.length]!;
        const result = await simulate(optionsFor(seed, profile));
        if (!result.ok) {
          const first = result.violations[0]!;
          failures.push(`npm run simulate -- --seed ${seed} --profile ${profile}: ${first.invariant}: ${first.detail}`);
        }
      }
      expect(failures).toEqual([]);
    }, 120_000);
  }
}
