import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

describe('formatting', () => {
  it('src and test are as prettier writes them (npm run format)', () => {
    const r = spawnSync(join(ROOT, 'node_modules/.bin/prettier'), ['--check', 'src/**/*.ts', 'test/**/*.ts'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/All matched files use Prettier code style/);
  });
});
