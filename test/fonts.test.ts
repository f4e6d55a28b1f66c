import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { missing } from './helpers/optional.js';
import { ROOT } from './helpers/paths.js';

/**
 * A minimal OS without fonts (issue 19): the demo camera drew every glyph as the same box and the daemon said it was
 * healthy. The machine's font folders are hidden in a private mount namespace (tmpfs over them), which is what such
 * a board looks like to fontconfig.
 */
const FONT_DIRS = ['/usr/share/fonts', '/etc/fonts', '/var/cache/fontconfig', '/usr/local/share/fonts'];
const PROBE = `
import { canDrawText, renderDemoFrames } from './dist/camera/index.js';
const drawable = await canDrawText();
const demo = await renderDemoFrames(1, 7).then(() => 'frames', (err) => err.code + ': ' + err.message);
console.log(JSON.stringify({ drawable, demo }));
`;

function probe(hideFonts: boolean): { drawable: boolean; demo: string } {
  const hide = FONT_DIRS.map((d) => `[ -d ${d} ] && mount -t tmpfs none ${d};`).join(' ');
  const script = `${hideFonts ? hide : ''} exec node --input-type=module -e "$PROBE"`;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { cwd: ROOT, env: { ...process.env, PROBE }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const canUnshare = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs none /mnt'], { encoding: 'utf8' }).status === 0;
const skip = missing('a private mount namespace (unshare -m, as root)', canUnshare, 'run the tests as root, as CI does');

describe.skipIf(skip)('a board without fonts', () => {
  it('draws text where fonts exist', () => {
    expect(probe(false)).toEqual({ drawable: true, demo: 'frames' });
  });

  it('is told that the demo camera cannot draw, with the package to install, instead of serving empty boxes', () => {
    const r = probe(true);
    expect(r.drawable).toBe(false);
    expect(r.demo).toMatch(/^OUTPOST_E_CAMERA: camera demo \(demo\): this machine has no font .*apt-get install fonts-dejavu-core/);
  });
});
