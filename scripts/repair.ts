// `npm run repair`: what an operator does about a quarantined channel (its
// state entry did not decode; the sequencer replaced it with a quarantine
// record and keeps acking its messages against it, RocketsChannelQuarantined
// fires).
//
//   npm run repair -- --list              the quarantined channels, with what was wrong with each
//   npm run repair -- <channel> [--force] rebuilds the channel's state from the events stream
//
// The rebuild folds every message the stream holds for the channel with the
// sequencer's own sequencing and writes it by compare-and-set over the
// quarantine record (internal/sequencer/channel-repair.ts). When the stream no
// longer starts at sequence 1 (retention removed messages), the channel's
// history may be cut: the rebuild then needs --force, and lacks what was
// removed. Connects like the services do: NATS_URL and the NATS_*
// credentials from the environment (a user that may write the state bucket:
// the sequencer's, or the operators' admin).

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readNats } from "../internal/config/common.js";
import { EnvReader } from "../internal/config/env-reader.js";
import { partitionOf } from "../internal/domain/partition.js";
import { checkChannel } from "../internal/domain/channel.js";
import { ChannelStateStore } from "../internal/nats/channel-state-store.js";
import { connectionOptions } from "../internal/nats/connection.js";
import { StreamParkedMessages } from "../internal/nats/parked-messages.js";
import { describeTopology, STATE_BUCKET } from "../internal/nats/topology.js";
import { repairChannel, type RepairOutcome } from "../internal/sequencer/channel-repair.js";
import { decodedParked } from "../internal/sequencer/partition-worker.js";
import type { Quarantine } from "../internal/sequencer/channel-states.js";

const USAGE = `usage: npm run repair -- --list
       npm run repair -- <channel> [--force]
`;

/** How long one fetch of a channel's history may take. */
const READ_TIMEOUT_MS = 10_000;

export async function listQuarantined(nc: NatsConnection): Promise<Array<{ channel: string; quarantine: Quarantine }>> {
  const store = new ChannelStateStore(await new Kvm(jetstream(nc)).open(STATE_BUCKET));
  const found: Array<{ channel: string; quarantine: Quarantine }> = [];
  await store.scanQuarantined((channel, quarantine) => found.push({ channel, quarantine }));
  return found;
}

export async function repair(nc: NatsConnection, channel: string, options: { force?: boolean } = {}): Promise<RepairOutcome> {
  const problem = checkChannel(channel);
  if (problem !== undefined) throw new Error(`"${channel}" is not a channel id: ${problem}`);
  const { partitions } = await describeTopology(nc);
  if (partitions === undefined) throw new Error("the deployment records no partition count yet: start the services once first");
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const store = new ChannelStateStore(await new Kvm(js).open(STATE_BUCKET), { js, jsm });
  const parked = decodedParked(new StreamParkedMessages(js, jsm, READ_TIMEOUT_MS));
  return repairChannel(channel, partitionOf(channel, partitions), store, parked, options);
}

function describe(channel: string, outcome: RepairOutcome): string {
  switch (outcome.kind) {
    case "healthy":
      return `${channel}: its entry decodes and is not quarantined; nothing to repair`;
    case "absent":
      return `${channel}: no state entry; nothing to repair`;
    case "history-cut":
      return (
        `${channel}: not repaired: the events stream no longer starts at sequence 1 (it starts at ${outcome.firstSeq}), so retention may have ` +
        "removed some of the channel's messages; --force rebuilds from what it holds"
      );
    case "repaired": {
      const { state } = outcome;
      const gap = state.gap ? `, waiting behind a gap from stream sequence ${state.gap.fromSeq} (${state.gap.parked} messages)` : "";
      return `${channel}: rebuilt from ${outcome.messages} stored messages: lastApplied ${state.lastApplied}${gap}; the sequencer takes it from here`;
    }
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes("--force");
  const list = args.includes("--list");
  const channels = args.filter((a) => !a.startsWith("--"));
  const unknown = args.filter((a) => a.startsWith("--") && a !== "--force" && a !== "--list");
  if (unknown.length > 0 || (!list && channels.length !== 1) || (list && channels.length > 0)) throw new Error(USAGE);
  const reader = new EnvReader(process.env);
  const nats = readNats(reader, "rockets-repair");
  reader.done();
  const nc = await connect({ ...(await connectionOptions(nats)), waitOnFirstConnect: false, maxReconnectAttempts: 0 });
  try {
    if (list) {
      const found = await listQuarantined(nc);
      if (found.length === 0) process.stdout.write("no quarantined channel\n");
      for (const { channel, quarantine } of found) {
        const problems = quarantine.problems.map((p) => `${p.path || "(entry)"} ${p.reason}`).join("; ");
        process.stdout.write(`${channel}  quarantined since ${quarantine.since}, messages from stream sequence ${quarantine.fromSeq}: ${problems}\n`);
      }
      return;
    }
    const channel = channels[0]!;
    const outcome = await repair(nc, channel, { force });
    process.stdout.write(`${describe(channel, outcome)}\n`);
    if (outcome.kind === "history-cut") process.exitCode = 2;
  } finally {
    await nc.close();
  }
}

if (process.argv[1]?.endsWith("repair.ts")) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
