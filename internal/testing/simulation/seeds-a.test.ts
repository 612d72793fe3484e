// Seeds 1..500 of the fixed set (seeds.fixture.ts); seeds-b.test.ts runs the
// rest, in a second worker.

import { describe } from "vitest";
import { seedRange } from "./seeds.fixture.js";

describe("simulation seeds", () => seedRange(1, 500));
