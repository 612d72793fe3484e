// Types of local-nats-users.mjs for the TypeScript that uses it (its tests).

export const USERS_DIR_NAME: string;
export const ACCOUNTS_FILE_NAME: string;
export const ADMIN_USER: string;
export const STREAMS_ACCOUNT: string;

export interface LocalNatsUsers {
  usersDir: string;
  /** Every password the server reads (deploy/nats/accounts.conf's $variables, and the route password). */
  serverEnv: Record<string, string>;
  serviceEnv(service: "ingest" | "sequencer" | "api"): { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string };
  routeUrl(host: string, port: number): string;
  /** `NATS_USER=rockets-admin NATS_PASSWORD=...` for a command run from `cwd`, reading the password from its file. */
  adminCommand(cwd: string): string;
}

export function localNatsUsers(dir: string): LocalNatsUsers;
export function placeAccountsFile(root: string, configDir: string): string;
export function adoptStoreBeforeAccounts(storeDir: string): boolean;
export function storeBeforeAccounts(storeDir: string): boolean;
