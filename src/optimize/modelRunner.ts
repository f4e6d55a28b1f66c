import type { TensorMap } from '../types.js';

export interface RunnerSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: TensorMap): Promise<TensorMap>;
  release(): Promise<void>;
}

export interface RunnerOptions {
  /** 'disabled' runs the graph as written (calibration); 'basic' folds BN and constants. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write ORT's optimized graph here. */
  saveOptimizedTo?: string;
  /** Intra-op threads for this session (the runner's default otherwise). */
  threads?: number;
}

/**
 * How the optimizer runs models (calibration, pre-processing, fidelity). The runtime module provides it; the
 * optimizer itself never imports ONNX Runtime (docs/ARCHITECTURE.md: runtime depends on optimize, not the reverse).
 */
export interface ModelRunner {
  open(model: string | Uint8Array, opts?: RunnerOptions): Promise<RunnerSession>;
}
