import { probeModel } from '../onnx/index.js';
import { errorMessage } from '../errors.js';
import { PROVIDERS, type ProviderName } from '../vocabulary.js';
import { LocalSession, type SessionSpec } from './localSession.js';
import { nodePlacement, type NodePlacement } from './nodePlacement.js';
import ort from './ortBinding.js';
import type { ProviderOptionsByName } from './providerOptions.js';
import { float32 } from './tensorData.js';

/** Accelerators before `cpu`: without a measurement, `auto` keeps the first of these that works. */
const AUTO_ORDER: readonly ProviderName[] = PROVIDERS;

/** What one provider is on this machine: compiled in or not, whether a session runs, and where its nodes go. */
export interface ProviderAttempt {
  provider: ProviderName;
  /** listed by this onnxruntime-node build (listSupportedBackends) */
  compiledIn: boolean;
  /** its libraries ship inside the package (cuda and tensorrt need the install script's download) */
  bundled: boolean;
  ok: boolean;
  error?: string;
  ms: number;
  /** the probe model's nodes on this provider (accelerators only) */
  placement?: NodePlacement;
}

export interface ProbeOptions {
  deviceId: number;
  providerOptions?: ProviderOptionsByName;
}

const PROBE_FEEDS = () => ({ x: float32(new Float32Array([1, 2, 3, 4]), [1, 4]) });

/** Creates and runs a tiny model built in code on one provider: proof it works, not just that it is compiled in. */
export async function probeProvider(provider: ProviderName, opts: ProbeOptions = { deviceId: 0 }): Promise<ProviderAttempt> {
  const started = performance.now();
  const listed = ort.listSupportedBackends().find((b) => b.name === provider);
  const base = { provider, compiledIn: listed !== undefined, bundled: listed?.bundled ?? false };
  if (!listed) {
    const has = ort.listSupportedBackends().map((b) => b.name);
    return { ...base, ok: false, error: `not compiled into this onnxruntime-node build (it has ${has.join(', ')})`, ms: 0 };
  }
  const spec: SessionSpec = { provider, threads: 1, deviceId: opts.deviceId, cacheDir: null, providerOptions: opts.providerOptions };
  try {
    const session = await LocalSession.create(probeModel(), spec);
    const out = await session.run(PROBE_FEEDS());
    await session.release();
    const y = out.y?.data;
    if (!y || Math.abs(Number(y[0]) - 4.5) > 1e-3) throw new Error(`probe gave a wrong answer (${y?.[0]})`);
    const placement = provider === 'cpu' ? undefined : await nodePlacement(probeModel(), spec, PROBE_FEEDS());
    return { ...base, ok: true, ms: performance.now() - started, ...(placement ? { placement } : {}) };
  } catch (err) {
    return { ...base, ok: false, error: errorMessage(err).split('\n')[0], ms: performance.now() - started };
  }
}

/**
 * Probes every requested provider (so a measured pick may use any that works, not only the first) and chooses
 * the first that works, in the requested order.
 */
export async function chooseProvider(
  requested: 'auto' | readonly ProviderName[],
  opts: ProbeOptions = { deviceId: 0 },
): Promise<{ chosen: ProviderName | null; attempts: ProviderAttempt[] }> {
  const order = requested === 'auto' ? AUTO_ORDER : requested;
  const attempts: ProviderAttempt[] = [];
  for (const provider of order) attempts.push(await probeProvider(provider, opts));
  return { chosen: attempts.find((a) => a.ok)?.provider ?? null, attempts };
}

export type { SessionSpec };
