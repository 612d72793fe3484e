// The NATS accounts and users of a local run (`npm start`, `npm run cluster`):
// the same accounts file every deployment uses (deploy/nats/accounts.conf,
// copied beside the server's configuration), with passwords made for this
// data directory, so that the system a person runs on their machine has the
// structure of a deployed one (docs/security.md, "NATS").
//
// - The first run makes one random password per user (a letter, then 24
//   bytes in base64url: safe in a route URL) in `<dir>/nats-users/<user>`,
//   mode 0600 in a 0700 directory, and every later run reuses them. Delete
//   the directory (with nothing running) to get new ones.
// - A password begins with a letter: nats-server reads the value of a
//   $variable like any configuration value, so one beginning with digits can
//   be taken for a number or a date and refused ("12-..."), or for an integer
//   ("1e").
// - The server gets every password in its environment (the accounts file
//   reads them as $variables); each service gets only its own user.
// - Plain JavaScript with no dependencies, like the rest of `npm start`.

import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join, relative } from "node:path";

export const USERS_DIR_NAME = "nats-users";
export const ACCOUNTS_FILE_NAME = "accounts.conf";
/** The user operators' tools connect as (`npm run topology`). */
export const ADMIN_USER = "rockets-admin";
/** The account holding the stream and buckets (deploy/nats/accounts.conf). */
export const STREAMS_ACCOUNT = "ROCKETS";

/** Every password the server reads, by the user it belongs to. */
const PASSWORD_VARIABLES = {
  ingest: "NATS_INGEST_PASSWORD",
  api: "NATS_API_PASSWORD",
  sequencer: "NATS_SEQUENCER_PASSWORD",
  [ADMIN_USER]: "NATS_ADMIN_PASSWORD",
  system: "NATS_SYSTEM_PASSWORD",
  route: "NATS_ROUTE_PASSWORD",
};

/**
 * The users of a local run in `dir`, their passwords made on first use:
 * `serverEnv` (every password), `serviceEnv(service)` (one service's user,
 * password and inbox), `routeUrl(host, port)`, `adminCommand(cwd)`.
 */
export function localNatsUsers(dir) {
  const usersDir = join(dir, USERS_DIR_NAME);
  mkdirSync(usersDir, { recursive: true, mode: 0o700 });
  chmodSync(usersDir, 0o700);
  const passwords = {};
  for (const user of Object.keys(PASSWORD_VARIABLES)) {
    const file = join(usersDir, user);
    // "wx": never over a file another start is writing.
    if (!existsSync(file)) writeFileSync(file, `p${randomBytes(24).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    // Tightened again in case it was copied or restored with a wider mode.
    chmodSync(file, 0o600);
    passwords[user] = readFileSync(file, "utf8").trim();
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(passwords[user])) {
      throw new Error(`${file} must hold one password: a letter, then letters, digits, '-' or '_' (nats-server may read one beginning with a digit as a number)`);
    }
  }
  return {
    usersDir,
    serverEnv: {
      ...Object.fromEntries(Object.entries(PASSWORD_VARIABLES).map(([user, variable]) => [variable, passwords[user]])),
      NATS_SYSTEM_USER: "system",
    },
    serviceEnv: (service) => ({ NATS_USER: service, NATS_PASSWORD: passwords[service], NATS_INBOX_PREFIX: `_INBOX_${service}` }),
    routeUrl: (host, port) => `nats-route://route:${passwords.route}@${host}:${port}`,
    adminCommand: (cwd) => `NATS_USER=${ADMIN_USER} NATS_PASSWORD="$(cat '${relative(cwd, join(usersDir, ADMIN_USER)).replaceAll("'", "'\\''")}')"`,
  };
}

/** Copies deploy/nats/accounts.conf beside a server's configuration file (nats-server resolves an include against the including file's directory). */
export function placeAccountsFile(root, configDir) {
  copyFileSync(join(root, "deploy", "nats", ACCOUNTS_FILE_NAME), join(configDir, ACCOUNTS_FILE_NAME));
  return `./${ACCOUNTS_FILE_NAME}`;
}

/**
 * A standalone store made before the accounts keeps its streams under the
 * default account ($G); moved once to the account that holds them now, so
 * that a start finds the same rockets. Returns true when it moved them. (A
 * cluster's stores also record their streams' account in the cluster's
 * metadata, which this cannot move: see `storeBeforeAccounts`.)
 */
export function adoptStoreBeforeAccounts(storeDir) {
  const from = join(storeDir, "jetstream", "$G");
  const to = join(storeDir, "jetstream", STREAMS_ACCOUNT);
  if (!existsSync(from) || existsSync(to)) return false;
  renameSync(from, to);
  return true;
}

/** Whether a store holds streams made before the accounts (under the default account $G). */
export function storeBeforeAccounts(storeDir) {
  const streams = join(storeDir, "jetstream", "$G", "streams");
  return existsSync(streams) && readdirSync(streams).length > 0;
}
