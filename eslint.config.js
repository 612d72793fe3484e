// Lint is part of `npm test`: type-aware rules catch the promise mistakes
// (a floating publish, a forgotten await on a KV write) that break the
// ack-after-commit guarantees.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "data/", "coverage/", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    // The pure domain must stay free of I/O: no NATS, HTTP or node:* imports.
    files: ["internal/domain/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["node:*", "@nats-io/*", "fastify", "pino", "prom-client", "../*/**", "../../*"] }],
    },
  },
  {
    // The sequencer's and the view's cores hold their ports (interfaces, entry
    // types, errors, the state format), as internal/ingest holds ingest's;
    // internal/nats implements them and is wired in by cmd/. Their tests may
    // run on real NATS.
    files: ["internal/sequencer/**/*.ts", "internal/view/**/*.ts", "internal/ingest/**/*.ts"],
    ignores: ["**/*.test.ts", "**/*.fixture.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["@nats-io/*", "../nats/*", "**/internal/nats/*"] }],
    },
  },
  {
    // No service builds a NATS client itself: internal/service/runner.ts
    // connects, internal/nats's factories (*-adapters.ts) build the adapters.
    // Tests may talk to NATS directly to set up and check what they test.
    files: ["cmd/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["@nats-io/*"] }],
    },
  },
);
