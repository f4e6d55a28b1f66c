import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Process tests spawn dist/cli.js and in-process tests run the inference worker from dist/: after an edit to src/,
 * `npx vitest run test/X.test.ts` would test the old build without a word. Before any test runs, a src/ file newer
 * than its build (or without one) makes this build again, and a build that fails stops the run.
 */
const ROOT = join(import.meta.dirname, '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? tsFiles(join(dir, d.name)) : d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [join(dir, d.name)] : [],
  );
}

export function staleBuild(root = ROOT): string | null {
  for (const src of tsFiles(join(root, 'src'))) {
    const built = join(root, 'dist', relative(join(root, 'src'), src).replace(/\.ts$/, '.js'));
    if (!existsSync(built)) return `${relative(root, src)} has no build`;
    if (statSync(src).mtimeMs > statSync(built).mtimeMs) return `${relative(root, src)} is newer than its build`;
  }
  return null;
}

export default function setup(): void {
  const why = staleBuild();
  if (!why) return;
  console.warn(`dist/ is stale (${why}): building it before the tests`);
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`dist/ is stale (${why}) and npm run build failed (exit ${r.status}): fix the build before testing`);
}
