import { createHash } from 'node:crypto';
import type { PlacementName } from '../vocabulary.js';
import { median, rounded } from '../benchMath.js';
import { dimsOf, intAttr, type GraphEditor, type ModelProto, type NodeProto } from '../onnx/index.js';
import type { TensorMap } from '../types.js';
import { isHardSwishPart } from './int8Rewrites.js';
import type { ModelRunner } from './modelRunner.js';

/**
 * Where int8 pays off depends on the CPU's kernels, not on the graph alone: on x86 with AVX-512, ORT's
 * QLinearConv loses to the fp32 NCHWc kernels on the 3-channel stem and on narrow depthwise layers, and
 * int8 element-wise chains (hard-swish, SE gates) cost more than the float ops they replace; on ARM the
 * balance differs. So the optimizer builds a few placements and times them on the board itself.
 */
export interface Placement {
  name: PlacementName;
  /** Conv reading the image (≤ 4 input channels) stays float. */
  floatStem: boolean;
  /** Depthwise Conv with fewer than 32 channels stays float. */
  floatNarrowDepthwise: boolean;
  /** Hard-swish, x · HardSigmoid(x), stays float (DQ → HardSigmoid → Mul → Q, what ORT runs for HardSwish). */
  floatHardSwish: boolean;
  /** Every Add/Mul/HardSigmoid/Sigmoid stays float (SE gates too). */
  floatElementwise: boolean;
}

const placement = (name: PlacementName, floatStem: boolean, floatNarrowDepthwise: boolean, floatHardSwish: boolean, floatElementwise: boolean): Placement => ({
  name,
  floatStem,
  floatNarrowDepthwise,
  floatHardSwish,
  floatElementwise,
});

export const PLACEMENTS: readonly Placement[] = [
  placement('all-int8', false, false, false, false),
  placement('float-stem', true, false, false, false),
  placement('float-stem-dw', true, true, false, false),
  placement('float-stem-dw-hardswish', true, true, true, false),
  placement('float-stem-hardswish', true, false, true, false),
  placement('float-stem-dw-elementwise', true, true, true, true),
];

const ELEMENTWISE = new Set(['Add', 'Mul', 'Sigmoid', 'HardSigmoid', 'LeakyRelu']);
const NARROW = 32;

function weightDims(node: NodeProto, ed: GraphEditor): number[] {
  const w = ed.initializer(node.input?.[1] ?? '') ?? ed.constant(node.input?.[1] ?? '');
  return w ? dimsOf(w) : [];
}

/** Activations that follow their producer: an int8 Relu after a float Conv would put the Conv between Q/DQ. */
const FOLLOWERS = new Set(['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid']);

/**
 * The nodes a placement keeps in float. A float Conv's own activation stays float with it: ORT quantizes
 * the weights of any float Conv found between DequantizeLinear and QuantizeLinear, undoing the choice.
 */
export function keepFloatFor(p: Placement): (node: NodeProto, ed: GraphEditor) => boolean {
  const keep = (node: NodeProto, ed: GraphEditor): boolean => {
    if (p.floatElementwise && ELEMENTWISE.has(node.op_type!)) return true;
    if (p.floatHardSwish && isHardSwishPart(node, ed)) return true;
    if (FOLLOWERS.has(node.op_type!)) {
      const producer = ed.producer(node.input?.[0] ?? '');
      return producer !== undefined && producer.op_type === 'Conv' && keep(producer, ed);
    }
    if (node.op_type !== 'Conv') return false;
    const [cout, cinPerGroup] = weightDims(node, ed);
    const group = intAttr(node, 'group', 1);
    if (p.floatStem && group === 1 && cinPerGroup <= 4) return true;
    return p.floatNarrowDepthwise && group > 1 && cinPerGroup === 1 && cout < NARROW;
  };
  return keep;
}

export interface PlacementCandidate {
  placement: Placement;
  model: ModelProto;
  /** The model encoded once: hashed, timed and measured from these bytes. */
  encoded: Uint8Array;
}

export interface PlacementTiming {
  name: string;
  /** Median milliseconds per run, one thread. */
  ms: number;
  bytes: number;
}

/** Timings within this fraction of the fastest count as equally fast (the box is noisy). */
const SAME_SPEED = 0.05;

/**
 * The order to try placements in: the equally fast ones first, smallest file first (storage and memory
 * are scarce on boards), then the rest fastest first.
 */
export function preferenceOrder(timings: PlacementTiming[]): PlacementTiming[] {
  const best = Math.min(...timings.map((t) => t.ms));
  const fast = timings.filter((t) => t.ms <= best * (1 + SAME_SPEED)).sort((a, b) => a.bytes - b.bytes);
  return [...fast, ...timings.filter((t) => !fast.includes(t)).sort((a, b) => a.ms - b.ms)];
}

/** Candidates that build the same graph (a model with no stem or no depthwise layer) are timed once. */
export function distinctCandidates<T extends PlacementCandidate>(candidates: T[]): T[] {
  const seen = new Set<string>();
  return candidates.filter((c) => {
    const h = createHash('sha256').update(c.encoded).digest('hex');
    if (seen.has(h)) return false;
    seen.add(h);
    return true;
  });
}

const ROUNDS = 7;
const RUNS_PER_ROUND = 12;

/**
 * Median time per run of each candidate on one thread, interleaved round by round so a noisy neighbour
 * slows every candidate alike.
 */
export async function timePlacements(
  candidates: PlacementCandidate[],
  feed: TensorMap,
  runner: ModelRunner,
  onRound?: (done: number, total: number) => void,
): Promise<PlacementTiming[]> {
  const sessions = [];
  try {
    for (const c of candidates) sessions.push(await runner.open(c.encoded, { threads: 1 }));
    for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(structuredClone(feed)); // warm-up: first runs allocate
    const perRound = candidates.map(() => [] as number[]);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, s] of sessions.entries()) {
        const runs: number[] = [];
        for (let k = 0; k < RUNS_PER_ROUND; k++) {
          const input = structuredClone(feed);
          const t0 = performance.now();
          await s.run(input);
          runs.push(performance.now() - t0);
        }
        perRound[i].push(median(runs));
      }
      onRound?.(r + 1, ROUNDS);
    }
    return candidates.map((c, i) => ({ name: c.placement.name, ms: rounded(median(perRound[i]), 3), bytes: c.encoded.length }));
  } finally {
    for (const s of sessions) await s.release();
  }
}
