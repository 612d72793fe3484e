import { describe, expect, it } from "vitest";
import { bareUrl, targetOf } from "./credentials.js";

describe("targetOf", () => {
  it("sends a URL's userinfo as Basic auth, percent-decoded as Go does, and never in the URL or what is printed", () => {
    const t = targetOf("http://rockets:a%2Fb%3Ac@127.0.0.1:8088/messages", "ignored");
    expect(t.authorization).toBe(`Basic ${Buffer.from("rockets:a/b:c").toString("base64")}`);
    expect(t.url.toString()).toBe("http://127.0.0.1:8088/messages");
    expect(t.display).toBe("http://rockets:***@127.0.0.1:8088/messages");
    expect(t.display).not.toContain("a%2Fb");
  });

  it("sends a key as Bearer when the URL has no userinfo, and nothing when there is neither", () => {
    expect(targetOf("http://127.0.0.1:8080", "k").authorization).toBe("Bearer k");
    expect(targetOf("http://127.0.0.1:8080").authorization).toBeUndefined();
    expect(targetOf("http://127.0.0.1:8080", "").authorization).toBeUndefined();
    expect(bareUrl(targetOf("http://u:p@127.0.0.1:8080/"))).toBe("http://127.0.0.1:8080");
    expect(targetOf("http://127.0.0.1:8080").display).toBe("http://127.0.0.1:8080");
  });
});
