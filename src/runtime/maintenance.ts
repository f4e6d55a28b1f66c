import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { OutpostConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { AUTOTUNE, MANIFEST, readManifest } from '../optimize/index.js';
import { optimizedGraphKey } from './localSession.js';
import { variantsDir } from './modelVariants.js';
import { runNiced } from './variantBuilder.js';

/** The variant folders (with a manifest) of the configured models, by model name. */
export function variantFolders(config: Readonly<OutpostConfig>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, m] of Object.entries(config.models)) {
    const dir = variantsDir(m.file, config.node.stateDir);
    if (existsSync(join(dir, MANIFEST))) out[name] = dir;
  }
  return out;
}

/**
 * Re-times every configured model's variants on this board (`outpost bench models`, niced, one model at a
 * time) and rewrites their autotune.json; `onRetuned` picks the new table up. What a governor level runs can
 * change after a driver update, a new ORT, or a board that runs warmer than it did.
 */
export async function rebenchmarkModels(
  cli: string,
  config: Readonly<OutpostConfig>,
  log: Logger,
  signal: AbortSignal,
  onRetuned: (model: string, dir: string) => void,
) {
  const retuned: string[] = [];
  const failed: Record<string, string[]> = {};
  for (const [model, dir] of Object.entries(variantFolders(config))) {
    if (signal.aborted) break;
    const { code, stderr } = await runNiced([cli, 'bench', 'models', dir, '--repeats', '3', '--json'], signal);
    if (code === 0 && existsSync(join(dir, AUTOTUNE))) {
      retuned.push(model);
      onRetuned(model, dir);
    } else if (!signal.aborted) failed[model] = stderr;
  }
  if (Object.keys(failed).length > 0) log.warn({ failed }, 'some models could not be re-timed');
  return { retuned, failed: Object.keys(failed) };
}

/**
 * Frees what no configured model uses any more: variant and calibration folders of models that left the config,
 * and ORT optimized graphs of files no model serves (or of an older ORT build: the key includes its version).
 */
export function cleanState(config: Readonly<OutpostConfig>, log: Logger): { removed: string[]; bytes: number } {
  const state = config.node.stateDir;
  const keepDirs = new Set(Object.values(config.models).map((m) => variantsDir(m.file, state)));
  const served = Object.values(config.models).flatMap((m) => {
    const dir = variantsDir(m.file, state);
    const variants = existsSync(join(dir, MANIFEST)) ? readManifest(dir).variants.map((v) => join(dir, v.file)) : [];
    return [m.file, ...variants].filter((f) => existsSync(f) && statSync(f).isFile());
  });
  const keepGraphs = new Set(served.map((f) => `${optimizedGraphKey(readFileSync(f))}.ort.onnx`));
  const removed: string[] = [];
  let bytes = 0;
  const remove = (path: string) => {
    bytes += sizeOf(path);
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  };
  for (const sub of ['models', 'calibration']) {
    const root = join(state, sub);
    for (const name of existsSync(root) ? readdirSync(root) : []) if (!keepDirs.has(join(state, 'models', name))) remove(join(root, name));
  }
  const cache = join(state, 'ort-cache');
  for (const name of existsSync(cache) ? readdirSync(cache) : []) if (!keepGraphs.has(name)) remove(join(cache, name));
  if (removed.length > 0) log.info({ removed, freedBytes: bytes }, 'state folder cleaned');
  return { removed, bytes };
}

function sizeOf(path: string): number {
  const st = statSync(path);
  return st.isDirectory() ? readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0) : st.size;
}
