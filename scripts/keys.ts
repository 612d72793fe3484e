// `npm run keys -- ...`: makes API keys (docs/security.md, "Keys").
//
//   npm run keys -- add <name> <scopes> [--file <keys file>]
//     A new random key with the scopes (comma-separated from write, read,
//     metrics): its line is appended to the keys file (default
//     $AUTH_KEYS_FILE, else data/api-keys, the one npm start reads), made
//     mode 0600 if it is new, and the key is printed once. Services read the
//     file at start: restart them to take the new key.
//
//   npm run keys -- deploy <dir>
//     The keys of a deployment (docker-compose.yml mounts deploy/keys):
//     <dir>/keys listing `rocket` (write), `console` (read) and `prometheus`
//     (metrics), and <dir>/metrics-key holding Prometheus's key; the rocket
//     and console keys are printed once. Refuses a keys file that already
//     lists keys (use add). Both files are mode 0644 so that the containers'
//     users can read them: keys holds digests only, and metrics-key grants
//     nothing but reading metrics.
//
// Every file written is checked with the services' own parser first.

import { existsSync, readFileSync, writeFileSync, appendFileSync, chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { generateApiKey, keysFileLine, parseApiKeys, SCOPES, Scope } from "../internal/http/api-keys.js";

const USAGE = `usage:
  npm run keys -- add <name> <scopes> [--file <keys file>]   scopes: comma-separated from ${SCOPES.join(", ")}
  npm run keys -- deploy <dir>                               e.g. npm run keys -- deploy deploy/keys
`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n${USAGE}`);
  process.exit(2);
}

function checked(text: string, what: string): void {
  const { problems } = parseApiKeys(text);
  if (problems.length > 0) fail(`${what} would not be accepted by the services:\n  ${problems.join("\n  ")}`);
}

function add(args: string[]): void {
  const fileAt = args.indexOf("--file");
  const file = fileAt >= 0 ? args[fileAt + 1] : (process.env["AUTH_KEYS_FILE"] || join("data", "api-keys"));
  const [name, scopes] = args.filter((_, i) => fileAt < 0 || (i !== fileAt && i !== fileAt + 1));
  if (!name || !scopes || !file) fail("add needs a name and scopes");
  const key = generateApiKey();
  const line = keysFileLine(name, scopes.split(",") as Scope[], key);
  const before = existsSync(file) ? readFileSync(file, "utf8") : "";
  checked(`${before}${before === "" || before.endsWith("\n") ? "" : "\n"}${line}\n`, `${file} with "${name}" added`);
  if (before === "") writeFileSync(file, `${line}\n`, { mode: 0o600, flag: "wx" });
  else appendFileSync(file, `${before.endsWith("\n") ? "" : "\n"}${line}\n`);
  process.stdout.write(`added "${name}" (${scopes}) to ${file}; restart the services to take it.\nkey: ${key}\n(shown once: only its digest is kept)\n`);
}

function deploy(args: string[]): void {
  const [dir] = args;
  if (!dir) fail("deploy needs a directory");
  mkdirSync(dir, { recursive: true });
  const keysFile = join(dir, "keys");
  if (existsSync(keysFile) && parseApiKeys(readFileSync(keysFile, "utf8")).entries.length > 0) {
    fail(`${keysFile} already lists keys; add more with: npm run keys -- add <name> <scopes> --file ${keysFile}`);
  }
  const keys = { rocket: generateApiKey(), console: generateApiKey(), prometheus: generateApiKey() };
  const text = [
    "# API keys of this deployment (npm run keys -- deploy); lines of <name> <scopes> <sha256 hex of the key>.",
    "# docs/security.md, \"Keys\", says how to add, rotate and remove them.",
    keysFileLine("rocket", [Scope.write], keys.rocket),
    keysFileLine("console", [Scope.read], keys.console),
    keysFileLine("prometheus", [Scope.metrics], keys.prometheus),
    "",
  ].join("\n");
  checked(text, keysFile);
  writeFileSync(keysFile, text);
  writeFileSync(join(dir, "metrics-key"), `${keys.prometheus}\n`);
  for (const file of [keysFile, join(dir, "metrics-key")]) chmodSync(file, 0o644);
  process.stdout.write(
    `wrote ${keysFile} and ${join(dir, "metrics-key")} (Prometheus's key).\n` +
      `rocket  (write): ${keys.rocket}\n` +
      `   e.g. ./rockets launch "http://rockets:${keys.rocket}@<host>:8088/messages"\n` +
      `console (read):  ${keys.console}\n` +
      "(shown once: only their digests are kept)\n",
  );
}

const [command, ...rest] = process.argv.slice(2);
if (command === "add") add(rest);
else if (command === "deploy") deploy(rest);
else fail(command === undefined ? "no command" : `unknown command ${command}`);
