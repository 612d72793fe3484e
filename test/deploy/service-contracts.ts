// What the code itself says about each service, for comparing with the
// deployment files: the environment variables its config reads and its
// default port. Read from the code, never restated: the env names are both
// observed (loadConfig called with an environment that records every name it
// is asked for) and scanned from the config sources (names read only on some
// paths), and the port is the config module's own default.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type Env } from "../../internal/config/env-reader.js";
import { ROOT } from "./manifests.js";

export const SERVICES = ["ingest", "sequencer", "api"] as const;
export type Service = (typeof SERVICES)[number];

export interface ServiceContract {
  name: Service;
  defaultPort: number;
  /** Every environment variable the service's configuration reads. */
  env: ReadonlySet<string>;
  /** Throws the service's ConfigError when `env` is not a valid configuration. */
  loadConfig(env: Env): unknown;
}

interface ConfigModule {
  loadConfig(env: Env): { listen?: { port?: number } };
  DEFAULT_PORT?: number;
}

const READ_CALL = /\.(?:string|int|bool|list|oneOf)\(\s*"([A-Z][A-Z0-9_]*)"/g;

function scannedNames(files: string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    for (const match of readFileSync(join(ROOT, file), "utf8").matchAll(READ_CALL)) names.add(match[1]!);
  }
  return names;
}

export async function serviceContract(name: Service): Promise<ServiceContract> {
  const module = (await import(`../../cmd/${name}/config.ts`)) as ConfigModule;
  const observed = new Set<string>();
  const recorder = new Proxy({} as Env, {
    get(_target, key) {
      if (typeof key === "string") observed.add(key);
      return undefined;
    },
  });
  // An empty environment is refused (AUTH is on by default and needs AUTH_KEYS_FILE): the names asked for are what counts.
  let defaults: { listen?: { port?: number } } | undefined;
  try {
    defaults = module.loadConfig(recorder);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
  }
  const defaultPort = module.DEFAULT_PORT ?? defaults?.listen?.port;
  if (typeof defaultPort !== "number") throw new Error(`cmd/${name}/config.ts exports no DEFAULT_PORT and its config has no listen.port`);
  const env = new Set([...observed, ...scannedNames([`cmd/${name}/config.ts`, "internal/config/common.ts"])]);
  return { name, defaultPort, env, loadConfig: (e) => module.loadConfig(e) };
}

export async function serviceContracts(): Promise<Record<Service, ServiceContract>> {
  const entries = await Promise.all(SERVICES.map(async (s) => [s, await serviceContract(s)] as const));
  return Object.fromEntries(entries) as Record<Service, ServiceContract>;
}

/** The image every service runs: `<package name>:<package version>`. */
export function imageName(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string };
  return `${pkg.name}:${pkg.version}`;
}
