/**
 * The words modules share, one table each: every module may import this leaf file, and a list that lives here
 * is never spelt again anywhere else (config enums, metric labels, bench tables and the runtime all read it).
 */

/**
 * ONNX Runtime's execution providers, accelerators before `cpu`: the order `auto` prefers them in when nothing
 * was measured. npm's onnxruntime-node has cpu and webgpu (and cuda/tensorrt with their libraries); the rest
 * need a custom build (docs/accelerators.md). Which serves a model is then measured (`outpost bench models DIR`).
 */
export const PROVIDERS = [
  'tensorrt',
  'cuda',
  'migraphx',
  'rocm',
  'openvino',
  'qnn',
  'coreml',
  'dml',
  'nnapi',
  'armnn',
  'acl',
  'webgpu',
  'xnnpack',
  'cpu',
] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Model variants the optimizer builds. */
export const PRECISIONS = ['fp32', 'fp16', 'int8-dynamic', 'int8-static'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * A governor level asks for a rung; each rung lists the variants that may fill it, best guess first. Without
 * autotune.json the first accepted one serves; with it, the fastest measured among them. The int8 rung exists
 * to cost less, so where no int8 variant beats fp32 on a board it may take whichever variant is fastest.
 */
export const RUNG_PRECISIONS = {
  fp32: ['fp32', 'fp16'],
  fp16: ['fp16', 'fp32'],
  int8: ['int8-static', 'int8-dynamic', 'fp32', 'fp16'],
  fastest: ['int8-static', 'int8-dynamic', 'fp16', 'fp32'],
} as const satisfies Record<string, readonly Precision[]>;
export type Rung = keyof typeof RUNG_PRECISIONS;
export const RUNGS = Object.keys(RUNG_PRECISIONS) as Rung[];

/** The timed steps of one frame, in order. */
export const STAGES = ['queue', 'decode', 'preprocess', 'infer', 'post'] as const;
export type StageName = (typeof STAGES)[number];

export const GOVERNOR_LEVELS = ['nominal', 'warm', 'hot', 'critical'] as const;
export type GovernorLevel = (typeof GOVERNOR_LEVELS)[number];

export const POWER_STATES = ['mains', 'battery', 'battery-low', 'undervoltage'] as const;
export type PowerState = (typeof POWER_STATES)[number];

/** int8-static placements: which layers stay float (optimize/placementSearch.ts says what each keeps). */
export const PLACEMENT_NAMES = [
  'all-int8',
  'float-stem',
  'float-stem-dw',
  'float-stem-dw-hardswish',
  'float-stem-hardswish',
  'float-stem-dw-elementwise',
] as const;
export type PlacementName = (typeof PLACEMENT_NAMES)[number];

/** What a key in the keyring may do: command this node, offload frames to it, receive its uploads. */
export const KEY_ROLES = ['operator', 'peer', 'collector'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

/** A broker URL, the same for the config and the operator's tools: mqtt://, mqtts://, ws:// or wss:// and a host. */
export const BROKER_URL = /^(mqtts?|wss?):\/\/[^\s/]+/;

/**
 * The one rule for a name: a node or device id, a camera, model, pipeline or keyring entry. One topic level
 * that needs no escaping (no wildcard, no "/"), a file name that needs no quoting.
 */
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const DEVICE_ID_RULE = 'use letters, digits, "-" and "_" (at most 64, starting with a letter or digit)';

/** Which results go out (MQTT events, uploads): every one, each change of what was read, a score at or above minScore. */
export const SELECTION_MODES = ['all', 'change', 'threshold'] as const;
export type SelectionMode = (typeof SELECTION_MODES)[number];
