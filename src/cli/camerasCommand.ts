import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { adviseCameras, probeCameras, type CameraReport } from '../camera/index.js';
import { OutpostError } from '../errors.js';

function render(report: CameraReport): string {
  const lines = ['cameras found (paste a source: line under `cameras: - name: NAME`)'];
  if (!report.cameras.length) lines.push('  none');
  for (const c of report.cameras) {
    lines.push(`  ${c.where}: ${c.detail}`);
    if (c.yaml) lines.push(`      ${c.yaml}`);
    if (c.advice) lines.push(`      ${c.yaml ? 'note' : 'use'}: ${c.advice.replace(/^use /, '')}`);
  }
  lines.push('tools');
  if (!report.tools.length) lines.push('  none');
  for (const t of report.tools) lines.push(`  ${t.tool.padEnd(16)} ${t.detail}`);
  lines.push('not found');
  if (!report.notFound.length) lines.push('  nothing');
  for (const m of report.notFound) lines.push(`  ${m.what}\n      fix: ${m.fix}`);
  return lines.join('\n') + '\n';
}

/** `outpost cameras`: what this board has for cameras (libcamera, GStreamer, V4L2), the YAML for each, and what is missing. */
export async function camerasCommand(opts: { root?: string; json?: boolean }): Promise<void> {
  const root = resolve(opts.root ?? '/');
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new OutpostError('OUTPOST_E_USAGE', `--root ${opts.root} is not a folder; pass a copy of a board's / (with sys/class/video4linux under it)`);
  const report = adviseCameras(await probeCameras(root));
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : render(report));
}
