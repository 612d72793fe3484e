import { describe, expect, it } from "vitest";
import { eventSubject } from "../nats/topology.js";
import { encodedSize, messageJson } from "./channel-actor.js";
import { decodeDelivery } from "./partition-worker.js";

const channel = "193270a9-c9cf-404a-8f83-838e71d9ae67";
const doc = {
  metadata: { channel, messageNumber: 2, messageTime: "2022-02-02T19:39:05.86337+01:00", messageType: "RocketSpeedIncreased" },
  message: { by: 300 },
};
const subject = eventSubject(5, channel);
const bytes = (text: string) => new Uint8Array(Buffer.from(text));

describe("decodeDelivery", () => {
  it("counts a message by its delivered length when that text holds exactly the message, without encoding it again", () => {
    const text = `{ "message": {"by": 300}, "metadata": ${JSON.stringify(doc.metadata)} }`;
    const r = decodeDelivery(5, subject, bytes(text));
    expect(r.ok && encodedSize(r.message)).toBe(Buffer.byteLength(text) + 1);
    // An inline state (format 1) still stores the message's own encoding.
    expect(r.ok && Buffer.from(messageJson(r.message)).toString()).toBe(JSON.stringify(doc));
  });

  it("counts a message that arrived with fields outside the schema by its own encoding, which never stores them", () => {
    const r = decodeDelivery(5, subject, bytes(JSON.stringify({ ...doc, extra: "x".repeat(50), message: { by: 300, junk: 1 } })));
    expect(r.ok && encodedSize(r.message)).toBe(Buffer.byteLength(JSON.stringify(doc)) + 1);
    expect(r.ok && Buffer.from(messageJson(r.message)).toString()).toBe(JSON.stringify(doc));
  });

  it("counts and encodes text the UTF-8 decoder had to repair as the repaired message", () => {
    const mission = { ...doc, metadata: { ...doc.metadata, messageType: "RocketMissionChanged" }, message: { newMission: "AB" } };
    const [before, after] = JSON.stringify(mission).split("AB");
    const broken = Buffer.concat([Buffer.from(`${before}A`), Buffer.from([0xff]), Buffer.from(`B${after}`)]);
    const r = decodeDelivery(5, subject, new Uint8Array(broken));
    expect(r.ok && r.message.message).toEqual({ newMission: "A\uFFFDB" });
    const stored = r.ok ? Buffer.from(messageJson(r.message)) : Buffer.alloc(0);
    expect(stored.includes(0xff)).toBe(false);
    expect(stored.toString()).toBe(JSON.stringify({ ...mission, message: { newMission: "A\uFFFDB" } }));
    expect(r.ok && encodedSize(r.message)).toBe(stored.byteLength + 1);
  });

  it("rejects text that is not JSON, an invalid message, and a message on another channel's subject", () => {
    expect(decodeDelivery(5, subject, bytes("{not json"))).toEqual({ ok: false, problems: [{ path: "", reason: "is not JSON" }] });
    const invalid = decodeDelivery(5, subject, bytes(JSON.stringify({ ...doc, message: { by: -1 } })));
    expect(invalid.ok).toBe(false);
    const elsewhere = decodeDelivery(5, eventSubject(5, "other-channel"), bytes(JSON.stringify(doc)));
    expect(elsewhere).toEqual({
      ok: false,
      problems: [{ path: "metadata.channel", reason: `belongs on ${subject}, found on ${eventSubject(5, "other-channel")}` }],
    });
  });
});
