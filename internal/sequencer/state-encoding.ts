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
import { isRfc3339, type Problem, type RocketMessage } from "../domain/message.js";
import type { Rocket } from "../domain/rocket.js";
import type { ChannelState, ParkedGap, SkippedRange } from "../domain/sequencing.js";
import { QuarantinedStateError, StateDecodeError, type Quarantine, type RecordedGap } from "./channel-states.js";

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

/** The format of a quarantine record (channel-states.ts, Quarantine). */
const QUARANTINE_FORMAT = "quarantined";
/** How every quarantine record begins. */
export const QUARANTINE_PREFIX = Buffer.from(`{"v":"${QUARANTINE_FORMAT}",`, "utf8");
/** A problem list kept in a quarantine record is cut to this many. */
const MAX_PROBLEMS_KEPT = 20;
/** Bytes of the replaced entry a quarantine record keeps at most (an entry is far smaller; a hand edit may not be). */
const MAX_ORIGINAL_BYTES = 64 * 1024;

export function encodeQuarantine(q: Quarantine): Uint8Array {
  const record = { v: QUARANTINE_FORMAT, fromSeq: q.fromSeq, since: q.since, problems: q.problems.slice(0, MAX_PROBLEMS_KEPT), original: q.original };
  return Buffer.from(JSON.stringify(record), "utf8");
}

/** The bytes an unreadable entry held, as a quarantine record keeps them (base64, cut at MAX_ORIGINAL_BYTES). */
export function originalOf(raw: Uint8Array | undefined): string {
  if (raw === undefined) return "";
  return Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, MAX_ORIGINAL_BYTES)).toString("base64");
}

function decodeQuarantine(s: Record<string, unknown>): Quarantine {
  const { fromSeq, since, problems, original } = s;
  const ok =
    typeof fromSeq === "number" &&
    Number.isSafeInteger(fromSeq) &&
    fromSeq >= 1 &&
    typeof since === "string" &&
    isRfc3339(since) &&
    Array.isArray(problems) &&
    typeof original === "string";
  if (!ok) throw new StateDecodeError("quarantine record is invalid");
  return { fromSeq, since, problems: problems as Problem[], original };
}

/** What an entry holds: a state, or a quarantine record. Throws StateDecodeError for anything else. */
export function decodeEntry(data: Uint8Array, channel: string): { state: ChannelState } | { quarantine: Quarantine } {
  if (startsWith(data, QUARANTINE_PREFIX)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
    } catch (err) {
      throw new StateDecodeError("quarantine record is not JSON", [], { cause: err });
    }
    return { quarantine: decodeQuarantine(parsed as Record<string, unknown>) };
  }
  return { state: decodeChannelState(data, channel) };
}

const GAP_FIELD = Buffer.from(`"gap":{`, "utf8");

/** What the registry needs of an entry's gap, without decoding entries that have none; undefined when none. */
export function recordedGapOf(data: Uint8Array, channel: string): RecordedGap | undefined {
  if (Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(GAP_FIELD) < 0) return undefined;
  let state: ChannelState;
  try {
    state = decodeChannelState(data, channel);
  } catch (err) {
    // An invalid entry is quarantined when its channel is next written.
    if (err instanceof StateDecodeError) return undefined;
    throw err;
  }
  if (state.gap === undefined) return undefined;
  return { since: Date.parse(state.gap.since), fromSeq: state.gap.fromSeq, launched: state.rocket !== null };
}

/** A log line names this many problems of an invalid state at most (the error carries them all). */
const MAX_PROBLEMS_SHOWN = 5;

/**
 * The state stored for `channel`; throws StateDecodeError when it is not
 * JSON, not our format, or not a valid state, and QuarantinedStateError when
 * the entry is a quarantine record.
 */
export function decodeChannelState(data: Uint8Array, channel: string): ChannelState {
  if (startsWith(data, QUARANTINE_PREFIX)) throw new QuarantinedStateError("the channel is quarantined: its stored state did not decode and waits for a repair");
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

