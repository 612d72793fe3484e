// The load of a chaos run: the project's load program (runLaunch) against
// each ingest, one run ("round") after another with a new seed each, until
// told to finish; the round under way then completes. Rounds make the load
// last exactly as long as the faults, however fast the machine is, and every
// round is a whole, verifiable launch: its rockets (new ones, from its seed)
// each start at number 1, and the state each must end in is known.
//
// Each round sends duplicates and reorders messages; its senders retry every
// 500 ms whatever the ingest answers (503, refused or reset connections while
// it is killed), as the operators' test program does. Rounds use keep-alive
// connections so the load's own CPU stays small on a 2-core machine.

import type { Rocket } from "../../internal/domain/mod.js";
import { messageId } from "../../internal/nats/topology.js";
import { runLaunch } from "../launch/launch.js";
import { AbortedError } from "../launch/sender.js";
import { TEST_KEYS } from "../../internal/testing/api-keys.js";

export interface RoundOptions {
  messagesPerRound: number;
  rocketsPerRound: number;
  concurrency: number;
  duplicateRate: number;
  reorderWindow: number;
  /** Seed of the first round against the first ingest; every round of every ingest gets its own. */
  seed: number;
}

export interface LoadTotals {
  rounds: number;
  /** Requests answered 2xx (duplicates included). */
  posts: number;
  /** Distinct messages. */
  messages: number;
  /** Second sends of a message. */
  duplicates: number;
  /** Failed attempts that were retried, by cause (`503`, `ECONNREFUSED`...). */
  failures: Map<string, number>;
  /** performance.now() of the last 2xx. */
  lastPostAt: number;
}

export class LoadRounds {
  /** The state every rocket sent so far must end in, by channel. */
  readonly expected = new Map<string, Rocket>();
  readonly totals: LoadTotals = { rounds: 0, posts: 0, messages: 0, duplicates: 0, failures: new Map(), lastPostAt: 0 };
  private finishing = false;
  private loops: Promise<void>[] = [];

  constructor(
    /** The ingests' POST /messages URLs. */
    private readonly targets: () => string[],
    private readonly options: RoundOptions,
    private readonly signal: AbortSignal,
  ) {}

  start(): void {
    const count = this.targets().length;
    this.loops = Array.from({ length: count }, (_, i) => this.loop(i, count));
  }

  /** Lets the rounds under way complete and starts no more; resolves when all have. */
  async finish(): Promise<void> {
    this.finishing = true;
    await Promise.all(this.loops);
  }

  private async loop(target: number, count: number): Promise<void> {
    for (let round = 0; !this.finishing && !this.signal.aborted; round++) {
      try {
        const result = await runLaunch(
          {
            url: this.targets()[target]!,
            maxMessages: this.options.messagesPerRound,
            rockets: this.options.rocketsPerRound,
            seed: this.options.seed + round * count + target,
            duplicateRate: this.options.duplicateRate,
            reorderWindow: this.options.reorderWindow,
            concurrency: this.options.concurrency,
            keepAlive: true,
            // The services run with AUTH=on and the test keys (internal/testing/service-process.ts).
            key: TEST_KEYS.writer,
          },
          { signal: this.signal },
        );
        for (const [channel, rocket] of result.expected) this.expected.set(channel, rocket);
        this.totals.rounds += 1;
        this.totals.posts += result.posts;
        this.totals.messages += result.messages;
        this.totals.duplicates += result.duplicates;
        this.totals.lastPostAt = Math.max(this.totals.lastPostAt, result.lastPostAt);
        for (const [why, n] of result.failures) this.totals.failures.set(why, (this.totals.failures.get(why) ?? 0) + n);
      } catch (err) {
        if (err instanceof AbortedError) return;
        throw err;
      }
    }
  }
}

/**
 * Every distinct message id the rounds stored: each rocket's messages are
 * numbered 1..n without gaps, so its final state's last number says which.
 */
export function expectedMessageIds(expected: ReadonlyMap<string, Rocket>): Set<string> {
  const ids = new Set<string>();
  for (const [channel, rocket] of expected) {
    for (let n = 1; n <= rocket.lastMessageNumber; n++) ids.add(messageId(channel, n));
  }
  return ids;
}
