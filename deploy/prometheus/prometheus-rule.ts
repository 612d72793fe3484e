// The Kubernetes PrometheusRule is generated from the rule file Prometheus
// loads in docker-compose (deploy/prometheus/rules/rockets.rules.yml), so the
// alert expressions have one source. Regenerate after editing the rules:
//
//   npx tsx deploy/prometheus/prometheus-rule.ts
//
// test/deploy-prometheus.test.ts fails when the committed file differs from
// what this renders.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

const HERE = fileURLToPath(new URL(".", import.meta.url));
export const RULES_FILE = join(HERE, "rules", "rockets.rules.yml");
export const PROMETHEUS_RULE_FILE = join(HERE, "..", "k8s", "monitoring", "prometheus-rule.yaml");

const HEADER = [
  "# GENERATED from deploy/prometheus/rules/rockets.rules.yml by",
  "# `npx tsx deploy/prometheus/prometheus-rule.ts`; edit the rules there.",
  "# docs/operations.md explains each alert and what to do about it.",
  "",
].join("\n");

export function renderPrometheusRule(rulesYaml: string): string {
  const rules = parse(rulesYaml) as { groups?: unknown };
  if (!Array.isArray(rules.groups)) throw new Error("the rule file has no `groups` list");
  const resource = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "rockets",
      labels: { "app.kubernetes.io/name": "rockets-alerts", "app.kubernetes.io/component": "monitoring" },
    },
    spec: { groups: rules.groups },
  };
  return HEADER + stringify(resource, { lineWidth: 0 });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(PROMETHEUS_RULE_FILE, renderPrometheusRule(readFileSync(RULES_FILE, "utf8")));
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}
