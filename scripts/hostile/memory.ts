// Memory of the system's processes, read from /proc while an attack runs:
// each process's resident set (VmRSS, with the resident sets of its child
// processes, so a service run as a primary with workers counts whole),
// sampled every `everyMs`, keeping the peak. The bounds are the memory limits
// the Kubernetes manifests give each container (deploy/k8s), read from
// those files so the suite and the deployment cannot disagree.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "../../internal/testing/service-process.js";

export const PROCESS_NAMES = ["ingest", "sequencer", "api", "nats"] as const;
export type ProcessName = (typeof PROCESS_NAMES)[number];

/** "512Mi", "1Gi", "256M" in bytes. */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(q.trim());
  if (!m) throw new Error(`not a Kubernetes memory quantity: ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

interface Container {
  name?: string;
  resources?: { limits?: { memory?: string } };
}

/** The memory limit of each process's container in deploy/k8s. */
export function kubernetesMemoryLimits(): Record<ProcessName, number> {
  const files: Record<ProcessName, [string, string]> = {
    ingest: ["deploy/k8s/ingest.yaml", "ingest"],
    sequencer: ["deploy/k8s/sequencer.yaml", "sequencer"],
    api: ["deploy/k8s/api.yaml", "api"],
    nats: ["deploy/k8s/nats/statefulset.yaml", "nats"],
  };
  const out = {} as Record<ProcessName, number>;
  for (const name of PROCESS_NAMES) {
    const [file, container] = files[name];
    const docs = parseAllDocuments(readFileSync(join(REPO_ROOT, file), "utf8")).map((d) => d.toJS() as { spec?: { template?: { spec?: { containers?: Container[] } } } });
    const containers = docs.flatMap((d) => d?.spec?.template?.spec?.containers ?? []);
    const memory = containers.find((c) => c.name === container)?.resources?.limits?.memory;
    if (memory === undefined) throw new Error(`${file}: no memory limit for container ${container}`);
    out[name] = quantityBytes(memory);
  }
  return out;
}

function statusField(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone meanwhile
  }
  return out;
}

/** Resident bytes of `pid` and its descendants now (0 when it is gone). */
export function residentBytes(pid: number): number {
  let sum = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    try {
      sum += statusField(p, "VmRSS");
    } catch {
      continue;
    }
    stack.push(...childrenOf(p));
  }
  return sum;
}

/** Samples every process's resident set until stopped; `peaks()` gives the highest seen for each. */
export class MemorySampler {
  private readonly peak = new Map<ProcessName, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: () => Partial<Record<ProcessName, number>>,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    for (const [name, pid] of Object.entries(this.pids()) as [ProcessName, number | undefined][]) {
      if (pid === undefined) continue;
      this.peak.set(name, Math.max(this.peak.get(name) ?? 0, residentBytes(pid)));
    }
  }

  stop(): Record<ProcessName, number> {
    clearInterval(this.timer);
    this.sample();
    return this.peaks();
  }

  peaks(): Record<ProcessName, number> {
    const out = {} as Record<ProcessName, number>;
    for (const name of PROCESS_NAMES) out[name] = this.peak.get(name) ?? 0;
    return out;
  }
}
