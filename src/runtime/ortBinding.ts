import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type * as Ort from 'onnxruntime-node';

/**
 * The onnxruntime-node package in use: npm's, or a custom build (JetPack's, one built with `--build_nodejs
 * --use_qnn`) named by `OUTPOST_ONNXRUNTIME=/path/to/its/js/node` (a folder with package.json, dist/ and bin/).
 * An environment variable, not a config key, because the package must be chosen before anything loads it,
 * in the daemon, its inference thread and its probe processes alike; unset it to go back to npm's build.
 */
export const ORT_PACKAGE = process.env.OUTPOST_ONNXRUNTIME ? resolve(process.env.OUTPOST_ONNXRUNTIME) : 'onnxruntime-node';

const require = createRequire(import.meta.url);
const ort: typeof Ort = require(ORT_PACKAGE);
export default ort;

/** The folder holding the package's native binding and libonnxruntime (and any provider libraries beside it). */
export function bindingDir(): string {
  const root = dirname(require.resolve(join(ORT_PACKAGE, 'package.json')));
  return join(root, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Shared libraries in the binding folder: libonnxruntime.so* and libonnxruntime_providers_*.so. */
export function ortLibraries(dir = bindingDir()): { core: string | null; providers: string[] } {
  const files = existsSync(dir) ? readdirSync(dir) : [];
  return {
    core: files.find((f) => /^libonnxruntime\.so/.test(f)) ?? null,
    providers: files.filter((f) => /^libonnxruntime_providers_.*\.so/.test(f)).sort(),
  };
}
