import { JetStreamApiError } from "@nats-io/jetstream";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { PublishFailedError, PublishTimeoutError, PublishUnavailableError } from "../ingest/message-publisher.js";
import { publishError } from "./publish-error.js";

describe("publishError", () => {
  it("maps NATS failures to our error classes, keeping the original as the cause", () => {
    const timeout = new TimeoutError();
    expect(publishError(timeout)).toBeInstanceOf(PublishTimeoutError);
    expect(publishError(timeout).cause).toBe(timeout);
    expect(publishError(new RequestError("x", { cause: new NoRespondersError("s") }))).toBeInstanceOf(PublishUnavailableError);
    expect(publishError(new RequestError("connection closed"))).toBeInstanceOf(PublishUnavailableError);
    const apiError = publishError(new JetStreamApiError({ code: 503, err_code: 10077, description: "maximum messages exceeded" }));
    expect(apiError).toBeInstanceOf(PublishFailedError);
    expect((apiError as PublishFailedError).code).toBe(10077);
    expect(publishError(new Error("boom"))).toBeInstanceOf(PublishFailedError);
  });
});
