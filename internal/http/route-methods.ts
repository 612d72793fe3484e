// Which methods each path takes, so that a known path asked with another
// method is answered 405 Method Not Allowed with an Allow header (RFC 9110
// §15.5.6), the same way on every service, rather than a 404 that suggests
// the path is wrong. Routes are recorded as they are registered (fastify's
// onRoute hook), so trackRouteMethods must be called before any route is.

import type { FastifyInstance } from "fastify";
import { ProblemType, type ProblemDocument } from "./problem-document.js";

/** The problem type every service uses for a 405. */

/** A fastify route URL (`/rockets/:channel`, `/docs/*`) as a regular expression over request paths. */
function pathPattern(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === "*" ? ".*" : part.startsWith(":") ? "[^/]+" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

export class RouteMethods {
  private readonly routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  add(url: string, methods: string | readonly string[]): void {
    const route = this.routes.get(url) ?? { pattern: pathPattern(url), methods: new Set<string>() };
    for (const m of typeof methods === "string" ? [methods] : methods) route.methods.add(m.toUpperCase());
    this.routes.set(url, route);
  }

  /** Every method some route takes on this request URL (its query ignored), sorted; empty for an unknown path. */
  allowed(requestUrl: string): string[] {
    const path = requestUrl.split("?")[0] ?? "";
    const methods = new Set<string>();
    for (const { pattern, methods: own } of this.routes.values()) {
      if (pattern.test(path)) for (const m of own) methods.add(m);
    }
    return [...methods].sort();
  }
}

export function trackRouteMethods(app: FastifyInstance): RouteMethods {
  const table = new RouteMethods();
  app.addHook("onRoute", (route) => table.add(route.url, route.method));
  return table;
}

/**
 * The 405 answer for a request whose path is known under other methods: the
 * Allow header's value and the problem document; undefined for an unknown
 * path, or one whose route takes this method but found nothing (a 404).
 */
export function methodNotAllowed(routes: RouteMethods, request: { method: string; url: string }): { allow: string; problem: ProblemDocument } | undefined {
  const allow = routes.allowed(request.url);
  // Unknown path, or a route that takes this method and found nothing (a missing file under /assets/*): a 404.
  if (allow.length === 0 || allow.includes(request.method.toUpperCase())) return undefined;
  const path = request.url.split("?")[0];
  return {
    allow: allow.join(", "),
    problem: {
      type: ProblemType.methodNotAllowed,
      title: "Method not allowed",
      status: 405,
      detail: `${path} does not take ${request.method}; it takes ${allow.join(", ")}`,
    },
  };
}
