import type { SessionInfo, SessionSpec } from './localSession.js';
import type { TensorMap } from './tensorData.js';

export type WorkerRequest =
  | { id: number; op: 'load'; key: string; file: string; spec: SessionSpec; reuse: boolean }
  | { id: number; op: 'run'; key: string; feeds: TensorMap }
  | { id: number; op: 'release'; key: string };

export interface RunReply {
  outputs: TensorMap;
  inferMs: number;
}

export type WorkerReply = { id: number; ok: true; value: SessionInfo | RunReply | null } | { id: number; ok: false; code: string; message: string };
