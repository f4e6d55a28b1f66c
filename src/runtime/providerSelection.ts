import { probeModel } from '../onnx/index.js';
import { errorMessage } from '../errors.js';
import { PROVIDERS, type ProviderName } from '../vocabulary.js';
import { LocalSession, type SessionSpec } from './localSession.js';
import { float32 } from './tensorData.js';

/** Fastest first: `auto` keeps the first of these that really creates and runs a session. */
export const AUTO_ORDER: readonly ProviderName[] = PROVIDERS;

export interface ProviderAttempt {
  provider: ProviderName;
  ok: boolean;
  error?: string;
  ms: number;
}

/** Creates and runs a tiny model built in code on one provider: proof it works, not what is compiled in. */
export async function probeProvider(provider: ProviderName, deviceId = 0): Promise<ProviderAttempt> {
  const started = performance.now();
  try {
    const session = await LocalSession.create(probeModel(), { provider, threads: 1, deviceId, cacheDir: null });
    const out = await session.run({ x: float32(new Float32Array([1, 2, 3, 4]), [1, 4]) });
    await session.release();
    const y = out.y?.data;
    if (!y || Math.abs(Number(y[0]) - 4.5) > 1e-3) throw new Error(`probe gave a wrong answer (${y?.[0]})`);
    return { provider, ok: true, ms: performance.now() - started };
  } catch (err) {
    return { provider, ok: false, error: errorMessage(err).split('\n')[0], ms: performance.now() - started };
  }
}

/** Tries the requested providers in order; returns the first that works and every attempt made. */
export async function chooseProvider(
  requested: 'auto' | readonly ProviderName[],
  deviceId = 0,
): Promise<{ chosen: ProviderName | null; attempts: ProviderAttempt[] }> {
  const order = requested === 'auto' ? AUTO_ORDER : requested;
  const attempts: ProviderAttempt[] = [];
  for (const provider of order) {
    const attempt = await probeProvider(provider, deviceId);
    attempts.push(attempt);
    if (attempt.ok) return { chosen: provider, attempts };
  }
  return { chosen: null, attempts };
}

export type { SessionSpec };
