import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WriteLinger } from "./write-linger.js";

describe("WriteLinger", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("starts at once when the linger is 0", () => {
    const linger = new WriteLinger(0);
    const started: string[] = [];
    linger.start(() => started.push("a"));
    expect(started).toEqual(["a"]);
  });

  it("starts every run of one window together, at the window's end and not before", () => {
    const linger = new WriteLinger(5);
    const started: string[] = [];
    linger.start(() => started.push("a"));
    vi.advanceTimersByTime(3);
    linger.start(() => started.push("b"));
    vi.advanceTimersByTime(1);
    expect(started).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(started).toEqual(["a", "b"]);
    // The next start opens a new window of its own.
    linger.start(() => started.push("c"));
    vi.advanceTimersByTime(4);
    expect(started).toEqual(["a", "b"]);
    vi.advanceTimersByTime(1);
    expect(started).toEqual(["a", "b", "c"]);
  });

  it("flush starts what waits now and leaves no timer behind", () => {
    const linger = new WriteLinger(50);
    const started: string[] = [];
    linger.start(() => started.push("a"));
    linger.flush();
    expect(started).toEqual(["a"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a run started by the window may start another, which waits for the next window", () => {
    const linger = new WriteLinger(5);
    const started: string[] = [];
    linger.start(() => {
      started.push("a");
      linger.start(() => started.push("b"));
    });
    vi.advanceTimersByTime(5);
    expect(started).toEqual(["a"]);
    vi.advanceTimersByTime(5);
    expect(started).toEqual(["a", "b"]);
  });
});
