// The Grafana dashboard (deploy/grafana/dashboards/rockets.json, the one JSON
// compose mounts and Kubernetes ships as a ConfigMap): well formed, every
// panel on the datasource variable, laid out without overlaps, and covering
// what operators look at. Its expressions are evaluated against a real
// Prometheus in deploy-observability.test.ts.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./deploy/manifests.js";

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string; datasource?: { type: string; uid: string } }>;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: string }> };
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, "deploy", "grafana", "dashboards", "rockets.json"), "utf8")) as Dashboard;
const panels = dashboard.panels.filter((p) => p.type !== "row");

describe("Grafana dashboard rockets.json", () => {
  it("picks its Prometheus datasource through a variable, so it works with any datasource uid", () => {
    expect(dashboard.uid).toBe("rockets");
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: "datasource", type: "datasource", query: "prometheus" }));
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual(p.datasource);
    }
  });

  it("gives every panel a query, with distinct refIds, and every panel a distinct id", () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
      for (const t of p.targets!) expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe("");
    }
  });

  it("lays the panels out on the 24-column grid without overlaps", () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i += 1) {
        for (let j = y; j < y + h; j += 1) {
          const cell = `${i},${j}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it("shows what operators watch: ingest, sequencer, API and NATS JetStream figures", () => {
    const titles = panels.map((p) => p.title);
    for (const title of [
      "Ingest rate by result",
      "Ingest latency p50 / p99",
      "Sequencer apply rate",
      "Duplicates",
      "Messages buffered behind gaps",
      "Oldest open gap",
      "Lag per partition",
      "Partitions per instance",
      "KV writes and conflicts",
      "API latency p50 / p99",
      "Rockets in view",
      "Stream messages",
      "Consumer pending",
      "Rockets by status",
      "Rockets by type (top 10 + other)",
      "Rockets by mission (top 10 + other)",
      "Average speed",
      "Rockets waiting on gaps",
    ]) {
      expect(titles).toContain(title);
    }
  });

  it("groups fleet panels only by bounded labels, never by channel", () => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        expect(t.expr, p.title).not.toMatch(/channel/);
        if (/rockets_api_fleet_/.test(t.expr)) expect(t.expr, p.title).toMatch(/^max( by \((status|type|mission)\) )?\(rockets_api_fleet_[a-z_]+\)$/);
      }
    }
  });
});
