// The interactive API reference every service serves at /docs (swagger-ui
// over its OpenAPI document), under a Content-Security-Policy as strict as
// the console's at `/`: scripts, styles, images, fonts and requests from this
// origin only, no plugins, no framing, no forms elsewhere. The reference
// loads nothing from another host (no validator badge), so nothing it needs
// is refused; test/api-reference.test.ts loads it in a browser and checks
// that it renders with no violation.

import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";

export const API_REFERENCE_PREFIX = "/docs";

export const API_REFERENCE_CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  // The one inline style swagger-ui draws: the <style> of the small logo SVG in its top bar
  // (".logo_small_svg__cls-2{fill:#fff}..."), allowed by its hash alone; test/api-reference.test.ts fails on any other.
  "style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='",
  "script-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Registers /docs and its files (each answered with API_REFERENCE_CSP). */
export function registerApiReference(app: FastifyInstance): ReturnType<FastifyInstance["register"]> {
  return app.register(swaggerUi, {
    routePrefix: API_REFERENCE_PREFIX,
    staticCSP: API_REFERENCE_CSP,
    // swagger-ui's default shows a badge fetched from validator.swagger.io: another host.
    uiConfig: { validatorUrl: null },
  });
}
