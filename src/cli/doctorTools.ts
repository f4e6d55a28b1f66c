import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OutpostConfig } from '../config/index.js';
import type { Finding } from './doctorInstall.js';

/** Camera source types that run ffmpeg. */
const FFMPEG_SOURCES = new Set(['v4l2', 'rtsp', 'file']);

/** ffmpeg: a fault when a configured camera needs it, else only a narrower board. */
export function ffmpegFinding(version: string | null, config: OutpostConfig | null): Finding {
  const needing = (config?.cameras ?? []).filter((c) => FFMPEG_SOURCES.has(c.source.type)).map((c) => c.name);
  const fix = `apt-get install ffmpeg (${needing.length ? `cameras ${needing.join(', ')} need it` : 'needed for v4l2, rtsp and file cameras'})`;
  return {
    check: 'ffmpeg',
    ok: version !== null,
    detail: version ?? (needing.length ? `not found on PATH; cameras ${needing.join(', ')} cannot start` : 'not found'),
    fix: version ? undefined : fix,
    optional: needing.length === 0,
  };
}

const FONT_FILE = /\.(ttf|otf|ttc|pfb|pcf(\.gz)?)$/i;

/** Whether a font file lies under `dir` (a bounded walk: a font folder is a few levels deep). */
function hasFont(dir: string, depth = 4): boolean {
  let names: import('node:fs').Dirent[];
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  if (names.some((d) => !d.isDirectory() && FONT_FILE.test(d.name))) return true;
  return depth > 0 && names.some((d) => d.isDirectory() && hasFont(join(dir, d.name), depth - 1));
}

/**
 * Fonts through fontconfig, which draws the demo camera's text: its config file and at least one font. Without
 * them every glyph is a box and the demo reads nothing while the node looks healthy.
 */
export function fontsFinding(root: string, config: OutpostConfig | null): Finding {
  const conf = join(root, 'etc/fonts/fonts.conf');
  const dirs = ['usr/share/fonts', 'usr/local/share/fonts'].map((d) => join(root, d));
  const missing = [existsSync(conf) ? null : `no ${conf}`, dirs.some((d) => hasFont(d)) ? null : `no font in ${dirs.join(' or ')}`].filter(Boolean);
  const demo = (config?.cameras ?? []).filter((c) => c.source.type === 'demo').map((c) => c.name);
  return {
    check: 'fonts',
    ok: missing.length === 0,
    detail: missing.length
      ? `${missing.join('; ')}${demo.length ? `: the demo camera ${demo.join(', ')} would draw boxes instead of text` : ''}`
      : `fontconfig and fonts in ${root}`,
    fix: missing.length ? 'apt-get install fontconfig fonts-dejavu-core' : undefined,
    optional: demo.length === 0,
  };
}
