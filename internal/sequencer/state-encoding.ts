// The state bucket's entry format: the versioned envelope every channel's
// state is written in (by the sequencer) and read from (by the sequencer and
// the API's view). Format 2 adds `gap` and `skipped`; format 1 (inline
// pending only) is still read, so states written before parking keep their
// buffered messages. A state's size does not grow with its gap: buffering a
// message rewrites a constant-size entry, not a list of every message waiting.
//
// What is read back is never trusted: decoding validates the whole state for
// its channel (validateChannelState: every buffered message by the rules that
// judged it at ingest), and an entry that fails is a StateDecodeError naming
// every problem, for the reader to report, never a state to act on.

import { validateChannelState } from "../domain/channel-state.js";
import type { RocketMessage } from "../domain/message.js";
import type { Rocket } from "../domain/rocket.js";
import type { ChannelState, ParkedGap, SkippedRange } from "../domain/sequencing.js";
import { StateDecodeError } from "./channel-states.js";

const FORMAT_VERSION = 2;
/** Formats decodeChannelState reads. */
const READABLE_FORMATS: ReadonlySet<unknown> = new Set([1, 2]);

interface StoredForm {
  v: number;
  rocket: Rocket | null;
  lastApplied: number;
  pending: RocketMessage[];
  gap?: ParkedGap | null;
  skipped?: SkippedRange[];
}

export function encodeChannelState(state: ChannelState): Uint8Array {
  return encodeChannelStateFrom(state, (m) => Buffer.from(JSON.stringify(m), "utf8"));
}

/** The fields after `pending`, as JSON text (empty when the state has neither). */
function tail(state: ChannelState): string {
  let text = "";
  if (state.gap !== undefined) text += `,"gap":${JSON.stringify(state.gap)}`;
  if (state.skipped !== undefined && state.skipped.length > 0) text += `,"skipped":${JSON.stringify(state.skipped)}`;
  return text;
}

/**
 * Encodes exactly like encodeChannelState (same bytes), but takes each
 * pending message's JSON from `messageJson`: a writer that keeps those bytes
 * from when the message arrived re-encodes only the rocket per write, not
 * every buffered message again.
 */
export function encodeChannelStateFrom(state: ChannelState, messageJson: (message: RocketMessage) => Uint8Array): Uint8Array {
  const head = Buffer.from(
    `{"v":${FORMAT_VERSION},"rocket":${JSON.stringify(state.rocket)},"lastApplied":${JSON.stringify(state.lastApplied)},"pending":[`,
    "utf8",
  );
  const chunks: Uint8Array[] = [head];
  let length = head.byteLength + 2;
  state.pending.forEach((message, i) => {
    if (i > 0) {
      chunks.push(COMMA);
      length += 1;
    }
    const json = messageJson(message);
    chunks.push(json);
    length += json.byteLength;
  });
  const close = Buffer.from(`]${tail(state)}}`, "utf8");
  chunks.push(close);
  return Buffer.concat(chunks, length - 2 + close.byteLength);
}

const COMMA = Buffer.from(",");
/** How every format-2 entry without a launched rocket begins (encodeChannelStateFrom writes the fields in this order). */
export const UNLAUNCHED_PREFIX = Buffer.from(`{"v":${FORMAT_VERSION},"rocket":null,`, "utf8");

export function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i += 1) if (data[i] !== prefix[i]) return false;
  return true;
}

/** A log line names this many problems of an invalid state at most (the error carries them all). */
const MAX_PROBLEMS_SHOWN = 5;

/** The state stored for `channel`; throws StateDecodeError when it is not JSON, not our format, or not a valid state. */
export function decodeChannelState(data: Uint8Array, channel: string): ChannelState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch (err) {
    throw new StateDecodeError("channel state is not JSON", [], { cause: err });
  }
  const s = parsed as Partial<StoredForm> | null;
  if (typeof s !== "object" || s === null || Array.isArray(s) || !READABLE_FORMATS.has(s.v)) {
    const format = typeof s === "object" && s !== null ? String(s.v) : "none";
    throw new StateDecodeError(`channel state has an unknown shape (format ${format})`);
  }
  const v = validateChannelState(s, channel);
  if (!v.ok) {
    const shown = v.problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `${p.path || "(state)"} ${p.reason}`);
    if (v.problems.length > MAX_PROBLEMS_SHOWN) shown.push(`and ${v.problems.length - MAX_PROBLEMS_SHOWN} more`);
    const list = shown.join("; ");
    throw new StateDecodeError(`channel state is invalid: ${list}`, v.problems);
  }
  return v.value;
}

