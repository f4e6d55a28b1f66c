import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { OutpostError, errorMessage } from '../errors.js';
import type { ProviderName } from '../vocabulary.js';
import ort from './ortBinding.js';
import { providerEntry, type ProviderOptionsByName } from './providerOptions.js';
import type { TensorData, TensorMap } from './tensorData.js';

export interface SessionSpec {
  provider: ProviderName;
  /** intraOpNumThreads; 0 means one per core. */
  threads: number;
  deviceId: number;
  /** Folder for ORT's optimized graphs (CPU only); null disables the cache. */
  cacheDir: string | null;
  /** Graph optimization level (default all); 'disabled' runs the graph exactly as written (calibration). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the graph ORT optimized to this file (pre-processing for quantization: BN folded, constants folded). */
  saveOptimizedTo?: string;
  /** `runtime.providerOptions`: each provider's own options, passed through. */
  providerOptions?: ProviderOptionsByName;
  /** Refuse the session when any node would fall back to the CPU (ORT's disable_cpu_ep_fallback). */
  noCpuFallback?: boolean;
  /**
   * ORT's CPU arena: faster runs (no malloc per intermediate tensor), but it grows in powers of two to the peak
   * of every shape a session ran and never gives it back. Off by default (runtime.cpuMemArena), measured by
   * `outpost bench memory`.
   */
  cpuArena?: boolean;
  /** Profile the session's runs to `<prefix>_<date>.json` (node placement: which provider ran each node). */
  profilePrefix?: string;
}

export interface SessionInfo {
  provider: ProviderName;
  inputNames: readonly string[];
  outputNames: readonly string[];
  /** Input shapes as the model declares them: numbers for fixed dimensions, names or null for free ones. */
  inputShapes: Record<string, (number | string | null)[]>;
  /** true when the session was created from a cached optimized graph. */
  fromCache: boolean;
  loadMs: number;
}

export const ORT_VERSION: string = ort.env.versions.common;

// ORT's own logger prints provider-load failures in colour on stderr; ours logs them once with the reason.
ort.env.logLevel = 'fatal';

/** The optimized graph depends on the model, the ORT build, the machine and the provider. */
function cachePath(spec: SessionSpec, model: Uint8Array): string | null {
  if (!spec.cacheDir || spec.provider !== 'cpu' || spec.optimization || spec.saveOptimizedTo) return null; // GPU providers' optimized graphs are not portable files
  return join(spec.cacheDir, `${optimizedGraphKey(model)}.ort.onnx`);
}

/** The cache key of a model's optimized CPU graph: its bytes, this ORT build and this architecture. */
export function optimizedGraphKey(model: Uint8Array): string {
  return createHash('sha256').update(model).update(`${ORT_VERSION}|${process.arch}|cpu`).digest('hex').slice(0, 24);
}

/** One ORT session in this thread. `run` blocks the calling thread for the whole inference. */
export class LocalSession {
  private constructor(
    private readonly session: InferenceSession,
    readonly info: SessionInfo,
  ) {}

  static async create(model: string | Uint8Array, spec: SessionSpec): Promise<LocalSession> {
    const started = performance.now();
    const bytes = typeof model === 'string' ? readModel(model) : model;
    const cached = cachePath(spec, bytes);
    const fromCache = cached !== null && existsSync(cached);
    const canCache = cached !== null && (fromCache || makeCacheDir(spec.cacheDir!));
    const options: InferenceSession.SessionOptions = {
      executionProviders: [providerEntry(spec.provider, spec.deviceId, spec.providerOptions?.[spec.provider])],
      intraOpNumThreads: spec.threads > 0 ? spec.threads : availableParallelism(),
      interOpNumThreads: 1,
      enableCpuMemArena: spec.cpuArena ?? false,
      graphOptimizationLevel: fromCache ? 'disabled' : (spec.optimization ?? defaultOptimization(model, spec.provider)),
      logSeverityLevel: 3,
      ...(cached && canCache && !fromCache ? { optimizedModelFilePath: cached } : {}),
      ...(spec.saveOptimizedTo ? { optimizedModelFilePath: spec.saveOptimizedTo } : {}),
      ...(spec.noCpuFallback ? { extra: { session: { disable_cpu_ep_fallback: '1' } } } : {}),
      ...(spec.profilePrefix ? { enableProfiling: true, profileFilePrefix: spec.profilePrefix } : {}),
    };
    try {
      const session = fromCache ? await ort.InferenceSession.create(cached!, options) : await ort.InferenceSession.create(bytes, options);
      const info = {
        provider: spec.provider,
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        inputShapes: shapesOf(session),
        fromCache,
        loadMs: performance.now() - started,
      };
      return new LocalSession(session, info);
    } catch (err) {
      const what = typeof model === 'string' ? model : 'a model built in memory';
      const reason = errorMessage(err).split('\n')[0];
      if (isProviderFailure(reason))
        throw new OutpostError('OUTPOST_E_PROVIDER', `cannot create a ${spec.provider} session for ${what}: ${reason}`, { cause: err });
      throw new OutpostError('OUTPOST_E_MODEL', `${what} is not a model ONNX Runtime can load (${reason}); check that the file is a whole .onnx export`, {
        cause: err,
      });
    }
  }

  async run(feeds: TensorMap): Promise<TensorMap> {
    for (const name of this.info.inputNames) {
      if (!feeds[name]) throw new OutpostError('OUTPOST_E_INPUT', `the model needs input "${name}" but got ${Object.keys(feeds).join(', ') || 'none'}`);
    }
    const ortFeeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const out = await this.session.run(ortFeeds);
    const result: TensorMap = {};
    for (const [name, t] of Object.entries(out)) result[name] = { type: t.type as TensorData['type'], dims: [...t.dims], data: t.data as TensorData['data'] };
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Whether a session failed because of the provider (its libraries, its device) rather than the model file. A
 * provider has already created and run the probe model by the time a real model loads, so anything else
 * (protobuf parsing, graph errors, unknown ops) is the model's fault.
 */
function isProviderFailure(reason: string): boolean {
  return (
    /shared library|No supported adapters|execution provider|CUDA|cuDNN|TensorRT|Vulkan|Dawn|WebGPU|adapter|device/i.test(reason) && !/protobuf/i.test(reason)
  );
}

/**
 * ORT 1.30's CPU layout transforms (level 'all') crash the process on some float16 graphs (ViT-tiny fp16:
 * SIGSEGV while optimizing); 'extended' runs them fine. Our optimizer names float16 variants *.fp16.onnx.
 */
function defaultOptimization(model: string | Uint8Array, provider: ProviderName): 'all' | 'extended' {
  return typeof model === 'string' && provider === 'cpu' && model.endsWith('.fp16.onnx') ? 'extended' : 'all';
}

function shapesOf(session: InferenceSession): SessionInfo['inputShapes'] {
  const shapes: SessionInfo['inputShapes'] = {};
  for (const m of session.inputMetadata) {
    shapes[m.name] = m.isTensor ? m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : typeof d === 'string' ? d : null)) : [];
  }
  return shapes;
}

/** The optimized-graph cache only saves start-up time: a folder that cannot be made means no cache, not no model. */
function makeCacheDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

function readModel(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new OutpostError('OUTPOST_E_MODEL', `cannot read model ${file} (${(err as NodeJS.ErrnoException).code ?? err}); check models.*.file in the config`);
  }
}

export function supportedBackends(): string[] {
  return ort.listSupportedBackends().map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`);
}
