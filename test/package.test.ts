import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/paths.js';

/**
 * Issue 19: a board without npm or internet installs from a release artifact. `npm run package` builds the real
 * tarball (production dependencies for this architecture, from the registry), then install.sh --from puts it into
 * a DESTDIR with npm hidden from PATH.
 */
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** PATH with node and the system's tools but no npm, as on a board that never had it. */
function pathWithoutNpm(): string {
  const bin = tempDir('outpost-nonpm-');
  for (const tool of [
    'bash',
    'sh',
    'env',
    'grep',
    'sort',
    'wc',
    'node',
    'tar',
    'gzip',
    'install',
    'cmp',
    'stat',
    'sha256sum',
    'sed',
    'find',
    'cut',
    'cat',
    'mktemp',
    'rm',
    'mkdir',
    'mv',
    'cp',
    'ln',
    'readlink',
    'uname',
    'id',
    'head',
    'chmod',
    'hostname',
    'tr',
    'printf',
    'dirname',
  ]) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found) spawnSync('ln', ['-s', found, join(bin, tool)]);
  }
  return bin;
}

describe('a release artifact installed offline (scripts/package.sh, install.sh --from)', () => {
  const out = tempDir('outpost-release-');
  let artifact = '';
  let built: ReturnType<typeof spawnSync>;
  beforeAll(() => {
    built = spawnSync('bash', [join(ROOT, 'scripts/package.sh'), '--out', out, '--json'], { encoding: 'utf8', timeout: 600_000 });
    artifact = join(out, `outpost-${version}-linux-${arch}.tar.gz`);
  });

  it("npm run package writes outpost-<version>-linux-<arch>.tar.gz with this platform's binaries only", () => {
    expect(built.status, String(built.stderr)).toBe(0);
    const report = JSON.parse(String(built.stdout)) as { file: string; arch: string; sha256: string };
    expect(report).toMatchObject({ file: artifact, arch, version });
    const list = spawnSync('tar', ['-tzf', artifact], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.split('\n');
    const ort = new Set(list.map((l) => /onnxruntime-node\/bin\/napi-v\d+\/linux\/([^/]+)\//.exec(l)?.[1]).filter(Boolean));
    expect([...ort]).toEqual([arch]);
    expect(list).toContain(`outpost-${version}-linux-${arch}/dist/cli.js`);
    expect(list.some((l) => l.includes('/node_modules/typescript/') || l.includes('/node_modules/vitest/'))).toBe(false);
  });

  it('installs without npm, runs on its own dependencies, and an upgrade keeps config and state', () => {
    const dest = tempDir('outpost-offline-');
    const env = { ...process.env, DESTDIR: dest, PATH: pathWithoutNpm() };
    const install = () => spawnSync('bash', [join(ROOT, 'scripts/install.sh'), '--from', artifact], { env, encoding: 'utf8', timeout: 300_000 });
    const first = install();
    expect(first.status, first.stderr + first.stdout).toBe(0);
    expect(first.stdout).toMatch(/installing production dependencies from the release/);
    const check = spawnSync(process.execPath, [join(dest, 'opt/outpost/dist/cli.js'), 'check-config', '--config', join(dest, 'etc/outpost/outpost.yaml')], {
      encoding: 'utf8',
      cwd: tempDir(),
    });
    expect(check.stdout, check.stderr).toMatch(/: ok \(/);
    // the board's own edits and state survive an upgrade to the same or a newer release
    const config = join(dest, 'etc/outpost/outpost.yaml');
    writeFileSync(config, `${readFileSync(config, 'utf8')}# edited on the board\n`);
    mkdirSync(join(dest, 'var/lib/outpost/outbox'), { recursive: true });
    writeFileSync(join(dest, 'var/lib/outpost/outbox/data.mdb'), 'items');
    const again = install();
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(config, 'utf8')).toMatch(/# edited on the board/);
    expect(readFileSync(join(dest, 'var/lib/outpost/outbox/data.mdb'), 'utf8')).toBe('items');
    expect(again.stdout).toMatch(/Done: 0 change\(s\)/);
  });

  it('refuses, before changing anything, a checkout without npm and an artifact for another architecture', () => {
    const dest = tempDir('outpost-refused-');
    const noNpm = spawnSync('bash', [join(ROOT, 'scripts/install.sh')], { env: { ...process.env, DESTDIR: dest, PATH: pathWithoutNpm() }, encoding: 'utf8' });
    expect(noNpm.status).toBe(1);
    expect(noNpm.stderr).toMatch(/npm is needed .* use a release: scripts\/install\.sh --from/);
    const other = arch === 'x64' ? 'arm64' : 'x64';
    const fake = tempDir('outpost-fake-');
    mkdirSync(join(fake, `outpost-${version}-linux-${other}/node_modules`), { recursive: true });
    writeFileSync(join(fake, `outpost-${version}-linux-${other}/ARCH`), `${other}\n`);
    const tarball = join(fake, 'other.tar.gz');
    spawnSync('tar', ['-C', fake, '-czf', tarball, `outpost-${version}-linux-${other}`]);
    const wrong = spawnSync('bash', [join(ROOT, 'scripts/install.sh'), '--from', tarball], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(new RegExp(`is for linux-${other}; this board is linux-${arch}`));
    expect(existsSync(dest) ? readdirSync(dest) : []).toEqual([]);
  });
});
