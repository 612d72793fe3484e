import { defineConfig } from "vitest/config";

// Integration tests start real nats-servers and child processes; on a 2-core
// machine a little parallelism is faster than none, and more only adds timeouts.
export default defineConfig({
  test: {
    include: ["internal/**/*.test.ts", "cmd/**/*.test.ts", "test/**/*.test.ts", "scripts/**/*.test.ts", "deploy/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    fileParallelism: true,
  },
});
