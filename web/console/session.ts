// The console's API key for this browser session.
//
// Guarantees:
// - The key is asked for once (login.ts) and kept in sessionStorage: it lasts
//   as long as the tab, is never written to localStorage or a cookie, and
//   leaves with the session. It is sent only as `Authorization: Bearer` on
//   same-origin requests (the console talks to no other host).
// - A key the API refuses (401, or 403: it cannot read) is forgotten at
//   once, so that the login form is shown instead of a console that keeps
//   failing. With AUTH=off the API answers without a key and none is asked for.

const STORAGE_KEY = "rockets.apiKey";

export const session = {
  get key(): string | undefined {
    try {
      return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
    } catch {
      return undefined;
    }
  },

  set(key: string): void {
    sessionStorage.setItem(STORAGE_KEY, key);
  },

  forget(): void {
    sessionStorage.removeItem(STORAGE_KEY);
  },

  /** The headers that carry the key, if there is one. */
  headers(): Record<string, string> {
    const key = this.key;
    return key === undefined ? {} : { authorization: `Bearer ${key}` };
  },
};

/** Called when the API refuses the key mid-session: the key is forgotten and the page asks for one again. */
let onRefused: () => void = () => undefined;

export function whenKeyRefused(handler: () => void): void {
  onRefused = handler;
}

/** For answers of 401 or 403 to the console's own reads. */
export function keyRefused(): void {
  session.forget();
  onRefused();
}
