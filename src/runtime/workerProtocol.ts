import type { SessionInfo, SessionSpec } from './localSession.js';
import type { TensorMap } from './tensorData.js';

export type WorkerRequest =
  | { id: number; op: 'load'; key: string; file: string; spec: SessionSpec; reuse: boolean }
  | { id: number; op: 'run'; key: string; feeds: TensorMap }
  | { id: number; op: 'release'; key: string }
  | { id: number; op: 'heap' };

/** The inference thread's own V8 heap (its isolate), in bytes. */
export interface WorkerHeap {
  heapTotalBytes: number;
  heapUsedBytes: number;
}

export interface RunReply {
  outputs: TensorMap;
  inferMs: number;
}

export type WorkerReply =
  { id: number; ok: true; value: SessionInfo | RunReply | WorkerHeap | null } | { id: number; ok: false; code: string; message: string };
