// The orders the list can be read in. Each sort key maps a rocket to one
// comparable value; ties are broken by channel, so every order is total and a
// page boundary is one exact point (what keyset cursors need).

import { utcInstant } from "../domain/history.js";
import type { RocketView } from "./rocket-view.js";

export const SortKey = {
  Channel: "channel",
  Type: "type",
  Mission: "mission",
  Speed: "speed",
  Status: "status",
  LaunchedAt: "launchedAt",
  UpdatedAt: "updatedAt",
} as const;
export type SortKey = (typeof SortKey)[keyof typeof SortKey];

export const SORT_KEYS: readonly SortKey[] = Object.values(SortKey);

export function isSortKey(v: string): v is SortKey {
  return (SORT_KEYS as readonly string[]).includes(v);
}

/** Speed sorts as a number; everything else as a string compared by UTF-16 code units. */
export type SortValue = string | number;

/**
 * A string that sorts like the instant an RFC 3339 time denotes, whatever its
 * offset and fraction length (see utcInstant). A string that is not such a
 * time is returned as is (the sequencer only stores validated times, so this
 * is a fallback, not a path).
 */
export function instantKey(time: string): string {
  const instant = utcInstant(time);
  return instant === undefined ? time : flatString(instant);
}

/**
 * The same string, stored flat. V8 keeps strings built by concatenation as
 * trees and substrings as views into their parent, and compares either kind
 * several times slower than a flat string (measured: ~10x for channel ids);
 * index updates compare sort values about 20 times each, so every string sort
 * value is flattened once, here. Array.prototype.join always builds a new
 * flat string; strings under 13 characters are never stored as trees or views.
 */
export function flatString(s: string): string {
  return s.length < 13 ? s : [s.slice(0, 1), s.slice(1)].join("");
}

export function sortValueOf(rocket: RocketView, key: SortKey): SortValue {
  switch (key) {
    case SortKey.Channel:
      return flatString(rocket.channel);
    case SortKey.Type:
      return flatString(rocket.type);
    case SortKey.Mission:
      return flatString(rocket.mission);
    case SortKey.Speed:
      return rocket.speed;
    case SortKey.Status:
      return rocket.status;
    case SortKey.LaunchedAt:
      return instantKey(rocket.launchedAt);
    case SortKey.UpdatedAt:
      return instantKey(rocket.updatedAt);
  }
}

/** Whether a cursor's value has the type this key sorts by. */
export function isSortValueFor(key: SortKey, value: unknown): value is SortValue {
  return key === SortKey.Speed ? typeof value === "number" && Number.isFinite(value) : typeof value === "string";
}
