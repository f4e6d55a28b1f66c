import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { staleBuild } from './globalSetup.js';
import { tempDir } from './helpers/paths.js';

describe('the stale-build guard run before the tests', () => {
  function tree(srcTime: number, distTime: number | null): string {
    const root = tempDir();
    mkdirSync(join(root, 'src/camera'), { recursive: true });
    mkdirSync(join(root, 'dist/camera'), { recursive: true });
    writeFileSync(join(root, 'src/camera/a.ts'), 'export {};\n');
    utimesSync(join(root, 'src/camera/a.ts'), srcTime, srcTime);
    if (distTime !== null) {
      writeFileSync(join(root, 'dist/camera/a.js'), 'export {};\n');
      utimesSync(join(root, 'dist/camera/a.js'), distTime, distTime);
    }
    return root;
  }

  it('passes a build newer than its source', () => {
    expect(staleBuild(tree(1000, 2000))).toBeNull();
  });

  it('names a source edited after the build, and one never built', () => {
    expect(staleBuild(tree(3000, 2000))).toBe('src/camera/a.ts is newer than its build');
    expect(staleBuild(tree(3000, null))).toBe('src/camera/a.ts has no build');
  });
});
