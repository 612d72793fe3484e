// The load program as a library: plan the traffic from the seed, send it,
// then (with a verify URL) wait for the API to show the expected final state.
// main.ts wraps this for the command line; tests and the e2e benchmark call it
// directly.
//
// It keeps a person informed: a target that refuses connections is said at
// once (TargetWatch), progress shows on a terminal or as lines elsewhere, the
// verification says how far it got every few seconds, and with --verify the
// API is asked first whether it already holds these rockets: a system that
// kept an earlier launch's data holds state this launch did not send, which
// is the usual reason a verification fails, and is said before and after.
// Keys travel as the operators' program sends them (URL userinfo as Basic
// auth) or as Bearer from --key, and are never printed (credentials.ts).

import type { Rocket } from "../../internal/domain/mod.js";
import { DEFAULTS, type LaunchOptions } from "./flags.js";
import { planLaunch } from "./generator.js";
import { silentLog, type Log } from "./log.js";
import { ProgressBar, type Summary } from "./progress.js";
import { Sender } from "./sender.js";
import { TargetWatch } from "./target-watch.js";
import { currentRockets, verifyFleet, type Mismatch } from "./verifier.js";
import { targetOf } from "./credentials.js";

/** A URL as printed: never with its password (the key). */
const shown = (url: string) => targetOf(url).display;

const RETRY_DELAY_MS = 500;
/** How often a verification still waiting says how far it got. */
const VERIFY_PROGRESS_EVERY_MS = 5000;

export interface LaunchHooks {
  log?: Log;
  /** Show progress on stderr: a bar on a terminal, a line every few seconds elsewhere. */
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
  /** With --verify: how many of this launch's rockets the API held before it sent anything (undefined if it could not tell). */
  preexisting?: number;
}

/** Why a verification that failed probably failed, when the API held these rockets before the launch. */
export function existingDataHint(result: Pick<LaunchResult, "preexisting" | "verify" | "expected">, seed: number): string | undefined {
  if (!result.verify || result.verify.ok || !result.preexisting) return undefined;
  return (
    `${result.preexisting} of these ${result.expected.size} rockets were already in the API before this launch ` +
    `(kept from an earlier launch with --seed ${seed}): their state holds messages this launch did not send, so it cannot match. ` +
    `To verify, use another --seed (e.g. --seed ${seed + 1}), or restart the system on a fresh DATA_DIR.`
  );
}

export type LaunchInput = Partial<LaunchOptions> & { url: string };

export async function runLaunch(input: LaunchInput, hooks: LaunchHooks = {}): Promise<LaunchResult> {
  const options: LaunchOptions = { ...DEFAULTS, verifyUrl: undefined, key: undefined, ...input };
  const log = hooks.log ?? silentLog;
  const plan = planLaunch(options);
  log.info(
    `sending ${plan.sends.length} messages (${plan.messages} distinct, ${plan.duplicates} duplicates) ` +
      `for ${plan.expected.size} rockets to ${shown(options.url)}, concurrency ${options.concurrency}`,
  );

  let preexisting: number | undefined;
  if (options.verifyUrl) {
    try {
      const held = await currentRockets(options.verifyUrl, [...plan.expected.keys()], hooks.signal, options.key);
      preexisting = [...held.values()].filter((r) => r !== undefined).length;
      if (preexisting > 0) {
        log.warn(
          `${preexisting} of these ${plan.expected.size} rockets already exist at ${shown(options.verifyUrl)} (from an earlier launch with --seed ${options.seed}?). ` +
            "--verify can only match if that launch sent exactly these messages; for a clean check use another --seed or a fresh DATA_DIR.",
        );
      }
    } catch (err) {
      log.warn(`could not ask ${shown(options.verifyUrl)} for earlier data (${err instanceof Error ? err.message : String(err)}); verifying at the end anyway`);
    }
  }

  const watch = new TargetWatch(shown(options.url), log, RETRY_DELAY_MS);
  const sender = new Sender({
    url: options.url,
    key: options.key,
    concurrency: options.concurrency,
    messageDelayMs: options.messageDelayMs,
    keepAlive: options.keepAlive,
    retryDelayMs: RETRY_DELAY_MS,
    signal: hooks.signal,
    onRetry: (m, why) => {
      log.debug(`retrying ${m.metadata.channel} #${m.metadata.messageNumber}: ${why}`);
      watch.failed(why);
    },
    onSuccess: () => watch.succeeded(),
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
    preexisting,
  };
  if (options.verifyUrl) {
    log.info(`verifying ${plan.expected.size} rockets against ${shown(options.verifyUrl)}`);
    const verifyStart = performance.now();
    let reportAt = verifyStart + VERIFY_PROGRESS_EVERY_MS;
    const verdict = await verifyFleet({
      apiUrl: options.verifyUrl,
      key: options.key,
      expected: plan.expected,
      timeoutMs: options.verifyTimeoutMs,
      signal: hooks.signal,
      onPoll: (matched) => {
        if (performance.now() < reportAt) return;
        reportAt = performance.now() + VERIFY_PROGRESS_EVERY_MS;
        log.info(`verifying: ${matched}/${plan.expected.size} rockets exact after ${Math.round((performance.now() - verifyStart) / 1000)} s`);
      },
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
