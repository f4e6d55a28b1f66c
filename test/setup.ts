import { afterAll } from 'vitest';
import { removeTempDirs } from './helpers/paths.js';

// OUTPOST_KEEP_TEST_DIRS=1 keeps them for a post-mortem
afterAll(() => {
  if (!process.env.OUTPOST_KEEP_TEST_DIRS) removeTempDirs();
});
