// docker-compose.yml as the deploy tests read it: YAML with merge keys (the
// file shares settings between services through anchors), as compose does.

import { join } from "node:path";
import { readYaml, ROOT } from "./manifests.js";

export interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: number };
}
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function readCompose(): ComposeFile {
  return readYaml<ComposeFile>(join(ROOT, "docker-compose.yml"), { merge: true });
}

/** The container side of a port mapping: "8088:8088" -> 8088, "9090" -> 9090. */
export function containerPort(mapping: string): number {
  return Number(mapping.split(":").at(-1)!.split("/")[0]);
}
