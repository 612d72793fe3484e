// A channel is a rocket's id. It becomes one token of a NATS subject
// (`rockets.events.<partition>.<channel>`), so it must never be able to
// change the subject's shape: no `.`, no wildcards, no whitespace or control
// characters. It must also survive UTF-8 (the subject and the KV key are
// UTF-8) and be told apart from another id by eye, so it holds no format
// (bidi, zero-width) characters and no unpaired surrogates either (text.ts).
// And it must be readable: `summary` and `stream` are taken by the API's own
// paths (/rockets/summary, /rockets/stream), so a rocket with either id could
// never be fetched, and the console would show the summary as that rocket.

import { checkCharacters } from "./text.js";

export const MAX_CHANNEL_LENGTH = 128;

/** Ids the API's paths under /rockets/ take for themselves. */
export const RESERVED_CHANNELS: readonly string[] = ["summary", "stream"];

// `.` separates tokens, `*` and `>` are wildcards; whitespace and control
// characters (C0, DEL, C1) break the protocol line; `\p{White_Space}` covers
// the Unicode spaces as well.
const UNSAFE = /[.*>\p{White_Space}\p{Cc}]/u;

/** Returns why `channel` is not a valid channel id, or undefined when it is. */
export function checkChannel(channel: string): string | undefined {
  if (channel.length === 0) return "must not be empty";
  if (channel.length > MAX_CHANNEL_LENGTH) return `must be at most ${MAX_CHANNEL_LENGTH} characters`;
  if (UNSAFE.test(channel)) {
    return "must be a single NATS subject token: no '.', '*', '>', whitespace or control characters";
  }
  if (RESERVED_CHANNELS.includes(channel)) return `must not be ${RESERVED_CHANNELS.map((c) => `'${c}'`).join(" or ")}: the API's paths /rockets/summary and /rockets/stream take them`;
  return checkCharacters(channel);
}

export function isChannel(channel: unknown): channel is string {
  return typeof channel === "string" && checkChannel(channel) === undefined;
}
