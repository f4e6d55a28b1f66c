/**
 * Data that crosses module boundaries (camera → pipeline → telemetry). Types only: every module may
 * import this file, and it imports only the vocabulary leaf, so the dependency arrows of docs/ARCHITECTURE.md stay one-way.
 */

import type { StageName } from './vocabulary.js';

export interface Frame {
  id: string;
  camera: string;
  seq: number;
  /** Date.now() when the frame left the camera. */
  capturedAt: number;
  data: Buffer;
  encoding: 'jpeg' | 'png';
  width: number;
  height: number;
  /** What a synthetic source rendered into the frame (the demo camera), for self-checks. */
  truth?: string[];
}

export interface SourceHealth {
  state: 'idle' | 'connecting' | 'streaming' | 'backoff' | 'stopped';
  connects: number;
  reconnects: number;
  stalls: number;
  /** Frames whose JPEG did not parse. */
  corrupt: number;
  /** Frames cut short in the stream. */
  truncated: number;
  lastError: string | null;
  /** Files a folder camera skipped, by reason (empty, not-an-image, unreadable). */
  skipped?: Record<string, number>;
}

export interface FrameSource {
  readonly name: string;
  frames(signal: AbortSignal): AsyncIterable<Frame>;
  /** Connection state and counters, for sources that connect to something. */
  health?(): SourceHealth;
}

export type Box = [number, number, number, number];

/** A word of a text line: where the recogniser saw a gap wider than the line's character pitch. */
export interface TextWord {
  text: string;
  score: number;
  box: Box;
}

export interface TextLine {
  /** The words joined by single spaces. */
  text: string;
  score: number;
  box: Box;
  words?: TextWord[];
}

export interface ClassScore {
  classIndex: number;
  label: string;
  score: number;
}

export interface DetectionOut {
  box: Box;
  score: number;
  label: string;
  classIndex: number;
  /** Filled by a second stage run on this detection's crop. */
  text?: string;
  classes?: ClassScore[];
}

/**
 * What a pipeline produced. Text pipelines (DB → CTC) give `lines`; detectors give `detections`;
 * whole-frame classifiers or recognisers give `classes` or `text`.
 */
export interface PipelineOutput {
  lines?: TextLine[];
  detections?: DetectionOut[];
  classes?: ClassScore[];
  text?: string;
}

export type Timings = Record<`${StageName}Ms`, number> & { totalMs: number };

/** Where a frame ran: here, or (some of its stages) on a peer. */
export type Placement = 'local' | { peer: string };

export interface Result {
  frameId: string;
  camera: string;
  capturedAt: number;
  finishedAt: number;
  model: string;
  /** The model variant that ran: a precision (fp32, int8-static, ...) or a variant's name. */
  variant: string;
  provider: string;
  placement: Placement;
  timings: Timings;
  output: PipelineOutput;
  /** The frame's rendered text when a synthetic source knows it (demo camera): lets anyone score the read. */
  truth?: string[];
}

/** A tensor as plain data: what crosses the worker boundary and module boundaries (its buffer can be transferred). */
export type TensorValues =
  Float32Array | Float64Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface TensorData {
  type: 'float32' | 'float64' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'float16' | 'bool';
  dims: number[];
  data: TensorValues;
}

export type TensorMap = Record<string, TensorData>;
