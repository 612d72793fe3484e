// Seeds 501..1000 of the fixed set (seeds.fixture.ts); seeds-a.test.ts runs
// the first half, in a second worker.

import { describe } from "vitest";
import { seedRange } from "./seeds.fixture.js";

describe("simulation seeds", () => seedRange(501, 1000));
