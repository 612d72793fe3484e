// Validation of a channel state read back from storage (the KV state
// bucket), by the same rules that judged its messages when they arrived.
//
// A stored state is input like any other: an older release may have written
// it under looser rules, an operator may have edited it, a bug may have
// written it wrong. Trusting it would let one bad entry make the sequencer
// apply a message no client could have sent, or apply in the wrong order.
// So every buffered message passes validateMessage and must belong to the
// channel, be numbered past the gap and be in strictly increasing order;
// the rocket must be one apply() could have produced for this channel at
// lastApplied; a gap record must locate its messages by a stream sequence and
// give its start as a UTC instant; skipped ranges must lie at or below
// lastApplied, in order, at most MAX_SKIPPED_RECORDED. Like validateMessage it never throws and lists every problem
// by path, without quoting stored values. A valid state is returned
// normalised (only the known fields), so it is bounded by the schema.

import { isChannel } from "./channel.js";
import { isRfc3339, MAX_TEXT_LENGTH, validateMessage, type Problem, type RocketMessage, type Validation } from "./message.js";
import { RocketStatus, type Rocket } from "./rocket.js";
import { MAX_SKIPPED_RECORDED, SkipReason, type ChannelState, type ParkedGap, type SkippedRange } from "./sequencing.js";

const skipReasons: ReadonlySet<unknown> = new Set(Object.values(SkipReason));
import { checkCharacters } from "./text.js";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const statuses: ReadonlySet<string> = new Set(Object.values(RocketStatus));

function isText(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_TEXT_LENGTH && checkCharacters(v) === undefined;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function validateRocket(input: unknown, channel: string, lastApplied: number, problems: Problem[]): Rocket | undefined {
  const before = problems.length;
  if (!isRecord(input)) {
    problems.push({ path: "rocket", reason: "must be an object once a launch is applied" });
    return undefined;
  }
  const need = (ok: boolean, field: string, reason: string) => {
    if (!ok) problems.push({ path: `rocket.${field}`, reason });
  };
  need(input["channel"] === channel, "channel", "must be the channel the state is stored under");
  need(isText(input["type"]), "type", "must be a valid text field");
  need(isText(input["mission"]), "mission", "must be a valid text field");
  need(isCount(input["speed"]), "speed", "must be a safe integer, not negative");
  const status = input["status"];
  need(typeof status === "string" && statuses.has(status), "status", `must be one of ${[...statuses].join(", ")}`);
  const reason = input["explosionReason"];
  need(
    status === RocketStatus.Exploded ? isText(reason) : reason === null,
    "explosionReason",
    "must be a valid text field when exploded, null otherwise",
  );
  for (const field of ["launchedAt", "updatedAt"]) {
    const t = input[field];
    need(typeof t === "string" && isRfc3339(t), field, "must be an RFC 3339 date-time naming a real date and time");
  }
  need(input["lastMessageNumber"] === lastApplied, "lastMessageNumber", "must equal lastApplied");
  if (problems.length !== before) return undefined;
  return {
    channel,
    type: input["type"] as string,
    mission: input["mission"] as string,
    speed: input["speed"] as number,
    status: status as RocketStatus,
    explosionReason: reason as string | null,
    launchedAt: input["launchedAt"] as string,
    updatedAt: input["updatedAt"] as string,
    lastMessageNumber: lastApplied,
  };
}

const UTC_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

function isInstant(v: unknown): v is string {
  return typeof v === "string" && UTC_INSTANT.test(v) && isRfc3339(v);
}

function validateGap(input: unknown, problems: Problem[]): ParkedGap | undefined {
  if (!isRecord(input)) {
    problems.push({ path: "gap", reason: "must be an object when present" });
    return undefined;
  }
  const before = problems.length;
  const { fromSeq, parked, since } = input;
  if (fromSeq !== null && !(isCount(fromSeq) && fromSeq >= 1)) problems.push({ path: "gap.fromSeq", reason: "must be a stream sequence (>= 1) or null" });
  if (!isCount(parked)) problems.push({ path: "gap.parked", reason: "must be a safe integer, not negative" });
  if (!isInstant(since)) problems.push({ path: "gap.since", reason: "must be an RFC 3339 UTC instant" });
  if (problems.length !== before) return undefined;
  return { fromSeq: fromSeq as number | null, parked: parked as number, since: since as string };
}

function validateSkipped(input: unknown, lastApplied: number, problems: Problem[]): SkippedRange[] {
  if (!Array.isArray(input)) {
    problems.push({ path: "skipped", reason: "must be an array when present" });
    return [];
  }
  if (input.length > MAX_SKIPPED_RECORDED) problems.push({ path: "skipped", reason: `must hold at most ${MAX_SKIPPED_RECORDED} ranges` });
  const ranges: SkippedRange[] = [];
  let previous = 0;
  input.forEach((raw: unknown, i) => {
    const path = `skipped.${i}`;
    if (!isRecord(raw) || !isCount(raw["from"]) || !isCount(raw["to"]) || !isInstant(raw["at"])) {
      problems.push({ path, reason: "must be { from, to, at } with safe integers and an RFC 3339 UTC instant" });
      return;
    }
    const from = raw["from"];
    const to = raw["to"];
    if (from <= previous || to < from || to >= lastApplied) {
      problems.push({ path, reason: "must be in order, past the range before it, and below lastApplied" });
      return;
    }
    const reason = raw["reason"];
    if (reason !== undefined && !skipReasons.has(reason)) {
      problems.push({ path: `${path}.reason`, reason: `must be one of ${[...skipReasons].join(", ")} when present` });
      return;
    }
    previous = to;
    ranges.push(reason === undefined ? { from, to, at: raw["at"] } : { from, to, at: raw["at"], reason: reason as SkipReason });
  });
  return ranges;
}

/** Validates the fields of a stored channel state (the envelope around them is the store's) for `channel`. */
export function validateChannelState(
  input: { rocket?: unknown; lastApplied?: unknown; pending?: unknown; gap?: unknown; skipped?: unknown },
  channel: string,
): Validation<ChannelState> {
  const problems: Problem[] = [];
  if (!isChannel(channel)) problems.push({ path: "", reason: "is stored under a key that is not a valid channel id" });
  const { lastApplied } = input;
  if (!isCount(lastApplied)) {
    problems.push({ path: "lastApplied", reason: "must be a safe integer, not negative" });
    return { ok: false, problems };
  }
  let rocket: Rocket | null = null;
  if (lastApplied === 0) {
    if (input.rocket !== null) problems.push({ path: "rocket", reason: "must be null before the launch is applied" });
  } else {
    rocket = validateRocket(input.rocket, channel, lastApplied, problems) ?? null;
  }
  const pending: RocketMessage[] = [];
  if (!Array.isArray(input.pending)) {
    problems.push({ path: "pending", reason: "must be an array" });
  } else {
    let previous = lastApplied + 1;
    input.pending.forEach((raw: unknown, i) => {
      const path = `pending.${i}`;
      const v = validateMessage(raw);
      if (!v.ok) {
        for (const p of v.problems) problems.push({ path: p.path === "" ? path : `${path}.${p.path}`, reason: p.reason });
        return;
      }
      const { metadata } = v.value;
      if (metadata.channel !== channel) {
        problems.push({ path: `${path}.metadata.channel`, reason: "must be the channel the state is stored under" });
      } else if (metadata.messageNumber <= previous) {
        problems.push({
          path: `${path}.metadata.messageNumber`,
          reason: "must be above lastApplied + 1 and above the message buffered before it",
        });
      } else {
        previous = metadata.messageNumber;
        pending.push(v.value);
      }
    });
  }
  const gap = input.gap === undefined || input.gap === null ? undefined : validateGap(input.gap, problems);
  const skipped = input.skipped === undefined ? [] : validateSkipped(input.skipped, lastApplied, problems);
  if (problems.length > 0) return { ok: false, problems };
  const value: ChannelState = { rocket, lastApplied, pending };
  if (gap !== undefined) value.gap = gap;
  if (skipped.length > 0) value.skipped = skipped;
  return { ok: true, value };
}
