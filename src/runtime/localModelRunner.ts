import type { ModelRunner } from '../optimize/index.js';
import type { ProviderName } from '../vocabulary.js';
import { LocalSession } from './localSession.js';

/** The optimizer's ModelRunner on in-process ORT sessions (the optimizer itself never imports ORT). */
export function localModelRunner(base: { provider: ProviderName; threads: number }): ModelRunner {
  return {
    async open(model, opts = {}) {
      const s = await LocalSession.create(model, {
        ...base,
        threads: opts.threads ?? base.threads,
        deviceId: 0,
        cacheDir: null,
        optimization: opts.optimization,
        saveOptimizedTo: opts.saveOptimizedTo,
      });
      return { inputNames: s.info.inputNames, outputNames: s.info.outputNames, run: (feeds) => s.run(feeds), release: () => s.release() };
    },
  };
}
