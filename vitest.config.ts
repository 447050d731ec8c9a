import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["server/**/*.test.ts", "e2e/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Agent processes and disk images are heavy: a 2-core machine runs one file at a time.
    fileParallelism: false,
    reporters: ["default"],
  },
});
