// `npm run hostile`: the attacks of issue 14 against the real system on
// loopback, with legit rockets in every partition measured throughout
// (docs/security.md, "Hostile suite"). Prints one table; exit 0 only when
// every attack passed.
//
//   npm run hostile [-- --short] [--only a,c] [--key KEY] [--env NAME=VALUE ...]
//
// --short runs the small profile of test/hostile.test.ts; --only runs the
// attacks named by letter; --key (or HOSTILE_API_KEY) is sent on every request
// once the services require one; --env adds to every service's environment
// (e.g. the keys they accept).

import { useApiKey } from "./client.js";
import { FULL, SHORT } from "./profile.js";
import { reportTable } from "./report.js";
import { runHostile } from "./run.js";

interface Args {
  short: boolean;
  only?: string[];
  key?: string;
  env: Record<string, string>;
}

const USAGE = "usage: npm run hostile [-- --short] [--only a,b] [--key KEY] [--env NAME=VALUE ...]";

function parse(argv: string[]): Args {
  const out: Args = { short: false, key: process.env["HOSTILE_API_KEY"], env: {} };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === "--short") out.short = true;
    else if (arg === "--only") out.only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (arg === "--key") out.key = argv[++i];
    else if (arg === "--env") {
      const [name, ...value] = (argv[++i] ?? "").split("=");
      if (!name || value.length === 0) throw new Error(`--env takes NAME=VALUE\n${USAGE}`);
      out.env[name] = value.join("=");
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return out;
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  if (args.key !== undefined) useApiKey(args.key);
  const started = Date.now();
  const results = await runHostile(args.short ? SHORT : FULL, {
    only: args.only,
    env: args.env,
    log: (line) => process.stderr.write(`[hostile +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`),
  });
  process.stdout.write(`${reportTable(results)}\n`);
  return results.every((r) => r.pass) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
