// The load program as a library: plan the traffic from the seed, send it,
// then (with a verify URL) wait for the API to show the expected final state.
// main.ts wraps this for the command line; tests and the e2e benchmark call it
// directly.

import type { Rocket } from "../../internal/domain/mod.js";
import { DEFAULTS, type LaunchOptions } from "./flags.js";
import { planLaunch } from "./generator.js";
import { silentLog, type Log } from "./log.js";
import { ProgressBar, type Summary } from "./progress.js";
import { Sender } from "./sender.js";
import { verifyFleet, type Mismatch } from "./verifier.js";

export interface LaunchHooks {
  log?: Log;
  /** Draw a progress bar when stderr is a terminal. */
  progress?: boolean;
  signal?: AbortSignal;
  /** Test hook: called once with the sender's live stats right after sending starts. */
  onStart?: (progress: { sent: () => number; total: number }) => void;
}

export interface LaunchResult extends Summary {
  /** performance.now() of the last 2xx. */
  lastPostAt: number;
  expected: Map<string, Rocket>;
  mismatches: Mismatch[];
}

export type LaunchInput = Partial<LaunchOptions> & { url: string };

export async function runLaunch(input: LaunchInput, hooks: LaunchHooks = {}): Promise<LaunchResult> {
  const options: LaunchOptions = { ...DEFAULTS, verifyUrl: undefined, ...input };
  const log = hooks.log ?? silentLog;
  const plan = planLaunch(options);
  log.info(
    `sending ${plan.sends.length} messages (${plan.messages} distinct, ${plan.duplicates} duplicates) ` +
      `for ${plan.expected.size} rockets to ${options.url}, concurrency ${options.concurrency}`,
  );

  const sender = new Sender({
    url: options.url,
    concurrency: options.concurrency,
    messageDelayMs: options.messageDelayMs,
    keepAlive: options.keepAlive,
    signal: hooks.signal,
    onRetry: (m, why) => log.debug(`retrying ${m.metadata.channel} #${m.metadata.messageNumber}: ${why}`),
  });
  const bar = new ProgressBar(plan.sends.length, sender.stats);
  if (hooks.progress) bar.start();
  hooks.onStart?.({ sent: () => sender.stats.sent, total: plan.sends.length });
  let stats;
  try {
    stats = await sender.sendAll(plan.sends);
  } finally {
    bar.stop();
  }

  const result: LaunchResult = {
    posts: stats.sent,
    messages: plan.messages,
    duplicates: plan.duplicates,
    sendMs: stats.lastPostAt - stats.startedAt,
    retries: stats.retries,
    failures: stats.failures,
    lastPostAt: stats.lastPostAt,
    expected: plan.expected,
    mismatches: [],
  };
  if (options.verifyUrl) {
    log.info(`verifying ${plan.expected.size} rockets against ${options.verifyUrl}`);
    const verdict = await verifyFleet({
      apiUrl: options.verifyUrl,
      expected: plan.expected,
      timeoutMs: options.verifyTimeoutMs,
      signal: hooks.signal,
    });
    result.verify = {
      ok: verdict.ok,
      settleMs: verdict.settledAt - stats.lastPostAt,
      matched: verdict.matched,
      rockets: plan.expected.size,
    };
    result.mismatches = verdict.mismatches;
  }
  return result;
}
