import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { kubernetesMemoryLimits, quantityBytes, residentBytes } from "./memory.js";
import { quantile } from "./legit.js";

describe("the hostile suite's measures", () => {
  it("reads each process's memory limit from the Kubernetes manifests", () => {
    expect(kubernetesMemoryLimits()).toEqual({ ingest: 512 * 2 ** 20, sequencer: 2 ** 30, api: 512 * 2 ** 20, nats: 2 ** 30 });
    expect(quantityBytes("1.5Gi")).toBe(1.5 * 2 ** 30);
    expect(quantityBytes("256M")).toBe(256e6);
    expect(() => quantityBytes("lots")).toThrow(/not a Kubernetes memory quantity/);
  });

  it("counts a process's children in its resident memory, and nothing for a process that is gone", async () => {
    const own = residentBytes(process.pid);
    expect(own).toBeGreaterThan(10 * 2 ** 20);
    const child = spawn(process.execPath, ["-e", "const b = Buffer.alloc(64 * 2 ** 20, 1); setTimeout(() => b, 60000)"], { stdio: "ignore" });
    try {
      const deadline = Date.now() + 10_000;
      while (residentBytes(process.pid) < own + 60 * 2 ** 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(residentBytes(process.pid)).toBeGreaterThan(own + 60 * 2 ** 20);
    } finally {
      child.kill("SIGKILL");
    }
    expect(residentBytes(2 ** 22 + 12_345)).toBe(0);
  });

  it("takes quantiles by nearest rank, a timeout (Infinity) above any bound", () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99)).toBe(99);
    expect(quantile([10, Infinity], 0.99)).toBe(Infinity);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
