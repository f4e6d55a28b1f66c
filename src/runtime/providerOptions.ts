import type { InferenceSession } from 'onnxruntime-node';
import type { ProviderName } from '../vocabulary.js';

export type ProviderOptionValues = Readonly<Record<string, string | number | boolean>>;
export type ProviderOptionsByName = Readonly<Partial<Record<ProviderName, ProviderOptionValues>>>;

/**
 * The options onnxruntime-node 1.30's binding reads for each provider (js/node/src/session_options_helper.cc);
 * it ignores any other key, so those are reported rather than silently dropped. A custom build may read more.
 */
export const BINDING_READS: Readonly<Partial<Record<ProviderName, readonly string[]>>> = {
  cuda: ['deviceId'],
  tensorrt: ['deviceId'],
  dml: ['deviceId'],
  coreml: ['coreMlFlags'],
  qnn: ['backendType', 'backendPath', 'enableFp16Precision'],
  webgpu: [
    'preferredLayout',
    'validationMode',
    'storageBufferCacheMode',
    'uniformBufferCacheMode',
    'queryResolveBufferCacheMode',
    'defaultBufferCacheMode',
    'enableRobustness',
  ],
};

const TAKES_DEVICE_ID: readonly ProviderName[] = ['cuda', 'tensorrt', 'dml', 'rocm', 'migraphx'];

/** The executionProviders entry for one provider: its name, the configured device, then its own options. */
export function providerEntry(provider: ProviderName, deviceId: number, options: ProviderOptionValues = {}): InferenceSession.ExecutionProviderConfig {
  const base = TAKES_DEVICE_ID.includes(provider) ? { deviceId } : {};
  if (Object.keys(base).length === 0 && Object.keys(options).length === 0) return provider;
  // ORT's type lists the known providers' option shapes; a custom build's provider takes its own keys
  return { name: provider, ...base, ...options } as unknown as InferenceSession.ExecutionProviderConfig;
}

/** Configured option keys this build's binding will not pass on, per provider (empty when all are read). */
export function unreadOptions(options: ProviderOptionsByName): Partial<Record<ProviderName, string[]>> {
  const out: Partial<Record<ProviderName, string[]>> = {};
  for (const [provider, values] of Object.entries(options) as [ProviderName, ProviderOptionValues][]) {
    const reads = BINDING_READS[provider] ?? [];
    const unread = Object.keys(values).filter((k) => !reads.includes(k));
    if (unread.length) out[provider] = unread;
  }
  return out;
}
