import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AUTOTUNE, MANIFEST, readAutotune, readManifest, type Autotune, type Manifest } from '../optimize/index.js';
import { RUNG_PRECISIONS, type Precision, type ProviderName, type Rung } from '../vocabulary.js';

/** Where a configured model's variants live: the folder it names, or the state dir's build for its sha256. */
export function variantsDir(modelFile: string, stateDir: string): string {
  if (existsSync(modelFile) && statSync(modelFile).isDirectory()) return modelFile;
  return join(stateDir, 'models', createHash('sha256').update(readFileSync(modelFile)).digest('hex'));
}

/**
 * The accepted variants of one model (from `outpost optimize`'s manifest) and which file serves each
 * precision rung: autotune.json's measured pick (variant, provider, threads) when its provider works here, else a preference.
 */
export class ModelVariants {
  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    private readonly autotune: Autotune | null,
  ) {}

  static load(dir: string): ModelVariants | null {
    if (!existsSync(join(dir, MANIFEST))) return null;
    return new ModelVariants(dir, readManifest(dir), existsSync(join(dir, AUTOTUNE)) ? readAutotune(dir) : null);
  }

  /**
   * The file for a rung, with the provider and intra-op threads autotune measured fastest for it on this board,
   * when that provider works here (`works`); else the preferred accepted variant on the engine's provider.
   */
  pick(rung: Rung, works: (provider: ProviderName) => boolean): { precision: Precision; file: string; threads?: number; provider?: ProviderName } | null {
    const accepted = this.manifest.variants.filter((v) => v.accepted);
    const tuned = this.autotune?.rungs[rung];
    if (tuned && works(tuned.provider) && accepted.some((v) => v.file === tuned.file))
      return { precision: tuned.precision, file: join(this.dir, tuned.file), threads: tuned.threads, provider: tuned.provider };
    for (const p of RUNG_PRECISIONS[rung]) {
      const v = accepted.find((x) => x.precision === p);
      if (v) return { precision: v.precision, file: join(this.dir, v.file) };
    }
    return null;
  }
}
