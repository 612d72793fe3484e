// The load of a run, and ingest as the sequencer sees it: rockets' messages
// sent out of order, repeated, resent late (sometimes changed), some held
// back until the end (a launch, one number of a gap), stored in the events
// stream the way ingest stores them:
// - a resend within the duplicate window is deduplicated by its message id
//   (answered 2xx, nothing stored);
// - a resend after it is checked against the channel's applied number (the
//   late-resend check): at or below it, nothing is stored; above it, it is
//   stored again, as a second copy under the same number;
// - everything stored was answered 2xx: the promise the checker holds.

import type { RocketMessage } from "../../domain/message.js";
import { validateMessage } from "../../domain/message.js";
import { eventSubject } from "../../domain/partition.js";
import { channelId, rocketMessages, Rng } from "../rocket-traffic.js";
import type { LoadSettings } from "./options.js";
import type { SimRandom } from "./random.js";
import { WORLD } from "./scheduler.js";
import type { World } from "./world.js";

/** One copy of a number the stream stored. */
export interface StoredCopy {
  seq: number;
  message: RocketMessage;
  at: number;
}

export interface RocketPlan {
  channel: string;
  partition: number;
  messages: RocketMessage[];
  /** Numbers held back until the end. */
  heldBack: Set<number>;
}

export class Load {
  readonly rockets: RocketPlan[] = [];
  /** Per channel and number, every copy stored, in stream order. */
  readonly copies = new Map<string, Map<number, StoredCopy[]>>();
  /** Per message id, when its last copy was stored (the duplicate window's record). */
  private readonly lastStored = new Map<string, number>();
  sends = 0;
  stored = 0;
  /** When the last send of the load phase is due (resends after the duplicate window come late). */
  lastSendAt = 0;
  deduplicated = 0;
  refusedLate = 0;
  changedStored = 0;

  constructor(
    private readonly world: World,
    private readonly random: SimRandom,
    readonly settings: LoadSettings,
    private readonly trace?: (line: string) => void,
  ) {
    for (let i = 0; i < settings.rockets; i += 1) {
      const channel = channelId(random.int(0xffffffff), i);
      const count = random.between(2, Math.max(2, settings.maxMessages));
      const messages = rocketMessages(channel, count, new Rng(random.int(0xffffffff)));
      const heldBack = new Set<number>();
      if (random.chance(settings.unlaunchedRate)) heldBack.add(1);
      if (count >= 3 && random.chance(settings.gapRate)) heldBack.add(random.between(2, count - 1));
      this.rockets.push({ channel, partition: world.partitionOf(channel), messages, heldBack });
    }
  }

  /** Schedules every send of the load phase. */
  schedule(): void {
    const { settings, random } = this;
    // Each rocket's numbers in order, shuffled within the reorder window, then interleaved over the phase.
    const sends: Array<{ at: number; rocket: RocketPlan; n: number }> = [];
    for (const rocket of this.rockets) {
      const order = rocket.messages.map((m) => m.metadata.messageNumber).filter((n) => !rocket.heldBack.has(n));
      for (let i = 0; i < order.length; i += 1) {
        const j = Math.min(order.length - 1, i + random.int(settings.reorderWindow + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      const start = random.next() * settings.chaosMs * 0.3;
      const spacing = (settings.chaosMs * 0.6) / Math.max(1, order.length);
      order.forEach((n, k) => sends.push({ at: start + k * spacing * (0.5 + random.next()), rocket, n }));
    }
    const at = (ms: number) => {
      this.lastSendAt = Math.max(this.lastSendAt, ms);
      return ms;
    };
    for (const send of sends) {
      const { rocket, n } = send;
      const due = at(send.at);
      this.world.scheduler.schedule(WORLD, due, () => this.send(rocket, n, false));
      if (random.chance(settings.duplicateRate)) this.world.scheduler.schedule(WORLD, at(due + random.next() * 500), () => this.send(rocket, n, false));
      if (random.chance(settings.lateResendRate)) {
        const changed = random.chance(settings.changedResendRate);
        this.world.scheduler.schedule(WORLD, at(due + settings.duplicateWindowMs + 1 + random.next() * 3000), () => this.send(rocket, n, changed));
      }
      if (random.chance(settings.invalidRate)) {
        this.world.scheduler.schedule(WORLD, at(due + random.next() * 100), () => {
          this.world.stream.append(eventSubject(rocket.partition, rocket.channel), "{\"not\":\"a message\"}");
          this.trace?.(`stream: invalid message on ${short(rocket.channel)}`);
        });
      }
    }
  }

  /** Sends every number not stored yet (held back, or lost to retention before it was stored): the end of the run. */
  complete(): void {
    for (const rocket of this.rockets) {
      for (const m of rocket.messages) {
        const n = m.metadata.messageNumber;
        if (!this.copies.get(rocket.channel)?.has(n)) this.send(rocket, n, false);
      }
    }
  }

  /** What ingest does with one POST of number `n` (changed: a different message under the same number). */
  send(rocket: RocketPlan, n: number, changed: boolean): void {
    this.sends += 1;
    const original = rocket.messages[n - 1]!;
    const message = changed ? changedCopy(original, this.random) : original;
    const id = `${rocket.channel}:${n}`;
    const last = this.lastStored.get(id);
    const now = this.world.scheduler.now;
    if (last !== undefined && now - last < this.settings.duplicateWindowMs) {
      this.deduplicated += 1;
      return;
    }
    const earlier = this.copies.get(rocket.channel)?.get(n);
    if (earlier !== undefined) {
      // The late-resend check: what the channel's state says it applied.
      // An entry that does not decode cannot say: ingest publishes unchecked.
      let applied = 0;
      try {
        applied = this.world.states.peek(rocket.channel)?.state.lastApplied ?? 0;
      } catch {
        applied = 0;
      }
      if (n <= applied) {
        this.refusedLate += 1;
        return;
      }
    }
    const seq = this.world.stream.publish(rocket.partition, message);
    this.lastStored.set(id, now);
    let byNumber = this.copies.get(rocket.channel);
    if (!byNumber) this.copies.set(rocket.channel, (byNumber = new Map()));
    let list = byNumber.get(n);
    if (!list) byNumber.set(n, (list = []));
    list.push({ seq, message, at: now });
    this.stored += 1;
    if (earlier !== undefined && changed) this.changedStored += 1;
    this.trace?.(`ingest: stored ${short(rocket.channel)} #${n} at seq ${seq}${earlier ? (changed ? " (a changed copy)" : " (a copy)") : ""}`);
  }

  /** The copy the promise names: the first the stream stored. */
  firstCopy(channel: string, n: number): StoredCopy | undefined {
    return this.copies.get(channel)?.get(n)?.[0];
  }
}

/** The same number with another content (the same type, another value). */
function changedCopy(original: RocketMessage, random: SimRandom): RocketMessage {
  const doc = JSON.parse(JSON.stringify(original)) as { metadata: Record<string, unknown>; message: Record<string, unknown> };
  const m = doc.message;
  if (typeof m["by"] === "number") m["by"] = (m["by"] as number) + 1 + random.int(1000);
  else if (typeof m["launchSpeed"] === "number") m["launchSpeed"] = (m["launchSpeed"] as number) + 1 + random.int(1000);
  else if (typeof m["newMission"] === "string") m["newMission"] = m["newMission"] === "APOLLO" ? "SKYLAB" : "APOLLO";
  else if (typeof m["reason"] === "string") m["reason"] = "UNKNOWN_OBJECT_COLLISION";
  const v = validateMessage(doc);
  if (!v.ok) throw new Error("changed copy is invalid");
  return v.value;
}

export function short(channel: string): string {
  return channel.slice(0, 8);
}
