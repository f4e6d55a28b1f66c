import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/cli.js');
export const SHARED = resolve(ROOT, '../shared');

/** ../shared holds the real photos, frames and models; a fresh user's machine does not have it. */
export function sharedPath(rel: string): string | null {
  const p = join(SHARED, rel);
  return existsSync(p) ? p : null;
}

const created: string[] = [];

/** Removes this test file's temporary folders (test/setup.ts calls it after each file). */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function tempDir(prefix = 'outpost-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export function writeTemp(name: string, text: string, dir = tempDir()): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
