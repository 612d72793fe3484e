// The pure domain: everything the services agree on about rockets, with no I/O.
export * from "./channel.js";
export * from "./channel-state.js";
export * from "./gap-skip.js";
export * from "./history.js";
export * from "./message.js";
export * from "./partition.js";
export * from "./rocket.js";
export * from "./sequencing.js";
export * from "./sequence-batch.js";
export * from "./text.js";
