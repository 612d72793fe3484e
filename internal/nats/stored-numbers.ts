// What ingest needs to know about numbers already stored, to answer a resend
// that comes after the stream's duplicate window honestly (the StoredNumbers
// port of cmd/ingest/resend-check.ts, checked where it is wired).
//
// Guarantees:
// - appliedThrough reads the channel's state entry: every number at or
//   below it was stored and applied. A replica may answer the read and lag
//   behind the leader: a lower number than the truth only means a resend is
//   left to the stream's own deduplication, never that a new message is
//   taken for a resend.
// - firstStored reads the channel's messages from the events stream (the
//   API's history read: direct gets, then the stream's leader; no consumer)
//   and returns the first one, in stream order, carrying the number: the one
//   the sequencer applied. A channel holding more than the history's limit is
//   refused (HistoryTooLongError).
//
// No NATS type leaves this module.

import type { KV } from "@nats-io/kv";
import type { RocketMessage } from "../domain/message.js";
import type { StreamChannelHistory } from "./channel-history.js";
import { ChannelStateStore } from "./channel-state-store.js";

export class StreamStoredNumbers {
  private readonly states: ChannelStateStore;

  constructor(
    stateKv: KV,
    private readonly history: StreamChannelHistory,
  ) {
    this.states = new ChannelStateStore(stateKv);
  }

  async appliedThrough(channel: string): Promise<number> {
    const stored = await this.states.load(channel);
    return stored?.state.lastApplied ?? 0;
  }

  async firstStored(channel: string, messageNumber: number): Promise<{ seq: number; message: RocketMessage } | undefined> {
    const { messages } = await this.history.read(channel);
    const first = messages.find((m) => m.message.metadata.messageNumber === messageNumber);
    return first === undefined ? undefined : { seq: first.seq, message: first.message };
  }
}
