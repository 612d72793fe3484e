// The Prometheus files: promtool accepts the compose config and the rules,
// the rules' unit tests pass, the Kubernetes PrometheusRule is exactly the
// rule file, and every alert says how bad it is and where its runbook is.

import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROMETHEUS_RULE_FILE, renderPrometheusRule, RULES_FILE } from "../deploy/prometheus/prometheus-rule.js";
import { readCompose } from "./deploy/compose.js";
import { readYaml, ROOT } from "./deploy/manifests.js";

const PROMETHEUS_DIR = join(ROOT, "deploy", "prometheus");

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function promtool(...args: string[]): { status: number | null; output: string } {
  return promtoolIn(PROMETHEUS_DIR, ...args);
}

function promtoolIn(cwd: string, ...args: string[]): { status: number | null; output: string } {
  const run = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  if (run.error) {
    throw new Error("promtool is not installed. Install Debian's Prometheus: `sudo apt-get install -y prometheus` (scripts/prereqs.mjs does it for npm test).");
  }
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const rules = readYaml<{ groups: Array<{ name: string; rules: AlertRule[] }> }>(RULES_FILE).groups.flatMap((g) => g.rules);

/**
 * deploy/prometheus as compose mounts it, in a temp directory: the files the
 * config names by their container path (the metrics key) mapped to the files
 * compose mounts there, which promtool requires to exist.
 */
function asMounted(): string {
  const dir = mkdtempSync(join(tmpdir(), "rockets-prometheus-config-"));
  cpSync(PROMETHEUS_DIR, dir, { recursive: true });
  const mounts = (readCompose().services["prometheus"]!.volumes ?? []).map((v) => v.split(":"));
  let text = readFileSync(join(dir, "prometheus.yml"), "utf8");
  for (const [host, container] of mounts) {
    if (host!.startsWith("./") && container !== "/etc/prometheus") text = text.replaceAll(container!, join(ROOT, host!));
  }
  writeFileSync(join(dir, "prometheus.yml"), text);
  return dir;
}

describe("Prometheus configuration deploy/prometheus", () => {
  it("passes `promtool check config`, rule files and the mounted metrics key included", () => {
    const dir = asMounted();
    let checked: ReturnType<typeof promtool>;
    try {
      checked = promtoolIn(dir, "check", "config", "prometheus.yml");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const { status, output } = checked;
    expect(output).toMatch(/SUCCESS: prometheus.yml is valid/);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(status, output).toBe(0);
  });

  it("passes `promtool check rules`", () => {
    const { status, output } = promtool("check", "rules", "rules/rockets.rules.yml");
    expect(status, output).toBe(0);
  });

  it("passes the rules' unit tests (`promtool test rules`): each alert fires when it should and not otherwise", () => {
    const { status, output } = promtool("test", "rules", "tests/rockets.rules.test.yml");
    expect(status, output).toBe(0);
    const tested = new Set([...readFileSync(join(PROMETHEUS_DIR, "tests", "rockets.rules.test.yml"), "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    expect(rules.map((r) => r.alert).filter((a) => !tested.has(a)), "alerts without a unit test").toEqual([]);
  });

  it("has the alerts operators need: lag growing, an old gap, ingest 5xx, a partition without owner, JetStream down", () => {
    const names = rules.map((r) => r.alert);
    for (const alert of ["RocketsSequencerLagGrowing", "RocketsSequencerOldGap", "RocketsIngestErrors", "RocketsPartitionWithoutOwner", "RocketsNatsJetStreamDown"]) {
      expect(names).toContain(alert);
    }
    expect(rules.find((r) => r.alert === "RocketsPartitionWithoutOwner")!.expr.trim()).toBe(
      "sum(rockets_sequencer_partitions_owned) < max(rockets_sequencer_partitions_total)",
    );
  });

  it("gives every alert a severity, a summary, a description and a runbook section that exists in docs/operations.md", () => {
    const docs = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
    const anchors = new Set(
      [...docs.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, "")
          .replace(/ /g, "-"),
      ),
    );
    for (const rule of rules) {
      expect(["warning", "critical"], rule.alert).toContain(rule.labels?.["severity"]);
      expect(rule.annotations?.["summary"], rule.alert).toBeTruthy();
      expect(rule.annotations?.["description"], rule.alert).toBeTruthy();
      const [file, anchor] = rule.annotations!["runbook"]!.split("#");
      expect(file, rule.alert).toBe("docs/operations.md");
      expect(anchors, `${rule.alert}: no heading for #${anchor}`).toContain(anchor);
    }
  });

  it("ships the same rules to Kubernetes: the PrometheusRule is generated from the rule file", () => {
    const committed = readFileSync(PROMETHEUS_RULE_FILE, "utf8");
    const expected = renderPrometheusRule(readFileSync(RULES_FILE, "utf8"));
    expect(committed, "stale: run `npx tsx deploy/prometheus/prometheus-rule.ts`").toBe(expected);
    const resource = parse(committed) as { spec: { groups: unknown } };
    expect(resource.spec.groups).toEqual(readYaml<{ groups: unknown }>(RULES_FILE).groups);
  });
});
