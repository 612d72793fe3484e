// Where the load program sends, and with which key, kept out of what it
// prints. A URL with userinfo (`http://rockets:<key>@host:8088/messages`) is
// sent the way Go's net/http sends it, which is what the operators' test
// program does: `Authorization: Basic base64(user:password)`, user and
// password percent-decoded, and the userinfo itself never sent in the URL.
// Without userinfo a key given by --key (or ROCKETS_API_KEY) is sent as
// `Authorization: Bearer <key>`. Log lines show the URL with the password
// replaced, so a run's output can be shared without the key.

export interface Target {
  /** The URL without userinfo, as requested. */
  url: URL;
  /** The URL as printed: the password, if any, replaced by `***`. */
  display: string;
  /** The Authorization header to send, if any. */
  authorization: string | undefined;
}

export function targetOf(url: string, key?: string): Target {
  const parsed = new URL(url);
  let authorization: string | undefined;
  let display = url;
  if (parsed.username !== "" || parsed.password !== "") {
    const pair = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
    authorization = `Basic ${Buffer.from(pair, "utf8").toString("base64")}`;
    const shown = new URL(url);
    if (shown.password !== "") shown.password = "***";
    display = shown.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
    parsed.username = "";
    parsed.password = "";
  } else if (key !== undefined && key !== "") {
    authorization = `Bearer ${key}`;
  }
  return { url: parsed, display, authorization };
}

/** The URL without userinfo, as a string without a trailing slash (for joining paths). */
export const bareUrl = (target: Target): string => target.url.toString().replace(/\/+$/, "");
