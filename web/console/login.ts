// The console's sign-in: a small form asking for an API key with the `read`
// scope, shown when the API answers 401 (and never with AUTH=off, where it
// answers without a key). The key is checked against the API before it is
// kept; a key the API does not know, or one that cannot read, is said so
// and not kept. The field is a password field: the key is never shown.

import { checkKey, type KeyCheck } from "./api.js";
import { h } from "./dom.js";
import { session } from "./session.js";

const WHY: Record<Exclude<KeyCheck, "ok">, string> = {
  unknown: "This API does not know that key. Check it and try again.",
  forbidden: "That key cannot read (it lacks the read scope). Use a key with read.",
  unavailable: "The API does not answer; try again in a moment.",
};

/** Shows the form in `outlet` until a key that can read is given; resolves then (the key kept for the session). */
export function askForKey(outlet: HTMLElement, refused?: boolean): Promise<void> {
  return new Promise((resolve) => {
    const input = h("input", {
      type: "password",
      name: "key",
      id: "login-key",
      autocomplete: "current-password",
      required: true,
      "data-testid": "login-key",
    });
    const error = h("p", { class: "login-error", role: "alert", "data-testid": "login-error", hidden: !refused }, refused ? "The API refused the key of this session: sign in again." : "");
    const button = h("button", { type: "submit", "data-testid": "login-submit" }, "Sign in");
    const form = h(
      "form",
      {
        class: "login",
        "data-testid": "login",
        onsubmit: (e: Event) => {
          e.preventDefault();
          const key = input.value.trim();
          if (key === "") return;
          button.disabled = true;
          void checkKey(key).then((answer) => {
            button.disabled = false;
            if (answer === "ok") {
              session.set(key);
              resolve();
              return;
            }
            error.textContent = WHY[answer];
            error.hidden = false;
            input.select();
          });
        },
      },
      h("h1", {}, "Sign in"),
      h("p", {}, "This console reads the Rockets API, which needs a key with the read scope. It is kept for this browser tab only."),
      h("label", { for: "login-key" }, "API key"),
      input,
      error,
      button,
    );
    outlet.replaceChildren(form);
    input.focus();
  });
}

/**
 * Resolves once the API takes this session's key (or no key, with AUTH=off),
 * asking for one until it does; `refused`: the API just refused the session's key;
 * `asking` is called when the form is about to show.
 */
export async function signIn(outlet: HTMLElement, refused = false, asking: () => void = () => undefined): Promise<void> {
  const held = session.key;
  if ((await checkKey(held)) === "ok") return;
  if (held !== undefined) session.forget();
  asking();
  await askForKey(outlet, refused || held !== undefined);
}
