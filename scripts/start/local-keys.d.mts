// Types of local-keys.mjs for the TypeScript that uses it (tests).

export type LocalKeys = { auth: "off" } | { auth: "on"; keysFile: string; key: string | undefined; created: boolean };

export const LOCAL_KEY_NAME: string;
export const LOCAL_KEY_SCOPES: string[];
export const KEYS_FILE_NAME: string;
export const KEY_FILE_NAME: string;
export const AUTH_OFF_WARNING: string[];
export function generateKey(): string;
export function keysLine(name: string, scopes: string[], key: string): string;
export function localKeys(dataDir: string, env: Record<string, string | undefined>): LocalKeys;
export function serviceAuthEnv(keys: LocalKeys): Record<string, string>;
export function urlWithKey(url: string, key: string | undefined): string;
