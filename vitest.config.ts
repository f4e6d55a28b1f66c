import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // builds dist/ when src/ is newer: process tests run the build, not the source
    globalSetup: ['test/globalSetup.ts'],
    // a guard against hangs, not a timing assertion: CI machines have run the heaviest tests 2.5x slower than a dev box
    testTimeout: 240_000,
    hookTimeout: 240_000,
    // ORT sessions use every core; running test files in parallel on a 2-core board only thrashes.
    fileParallelism: false,
  },
});
