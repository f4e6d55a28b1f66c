import type { ProviderName } from '../vocabulary.js';
import type { SessionInfo, SessionSpec } from './localSession.js';
import type { ProviderAttempt } from './providerSelection.js';
import type { TensorMap } from './tensorData.js';

export type WorkerRequest =
  | { id: number; op: 'choose'; requested: 'auto' | ProviderName[]; deviceId: number }
  | { id: number; op: 'load'; key: string; file: string; spec: SessionSpec; reuse: boolean }
  | { id: number; op: 'run'; key: string; feeds: TensorMap }
  | { id: number; op: 'release'; key: string };

export interface RunReply {
  outputs: TensorMap;
  inferMs: number;
}

export interface ChooseReply {
  chosen: ProviderName | null;
  attempts: ProviderAttempt[];
}

export type WorkerReply =
  { id: number; ok: true; value: SessionInfo | RunReply | ChooseReply | null } | { id: number; ok: false; code: string; message: string };
