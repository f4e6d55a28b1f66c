import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // ORT sessions use every core; running test files in parallel on a 2-core board only thrashes.
    fileParallelism: false,
  },
});
