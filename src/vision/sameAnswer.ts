import type { Box, PipelineOutput } from '../types.js';
import { iou } from './detections.js';
import { textAgreement } from './textAccuracy.js';

/** How close a peer's answer must be to ours: another precision variant may move boxes and flip a character. */
const MIN_IOU = 0.5;
const MIN_CHARACTERS = 0.8;
const MIN_FOUND = 0.8;

interface Item {
  name: string;
  box: Box | null;
}

function items(o: PipelineOutput): Item[] {
  return [
    ...(o.lines ?? []).map((l) => ({ name: l.text, box: l.box })),
    ...(o.detections ?? []).map((d) => ({ name: d.text ?? d.classes?.[0]?.label ?? d.label, box: d.box })),
    ...(o.classes ?? []).slice(0, 1).map((c) => ({ name: c.label, box: null })),
    ...(o.text !== undefined ? [{ name: o.text, box: null }] : []),
  ];
}

const alike = (a: Item, b: Item) => textAgreement(a.name, b.name) >= MIN_CHARACTERS && (a.box === null || (b.box !== null && iou(a.box, b.box) >= MIN_IOU));

/**
 * Whether a peer's answer to a known-answer probe is the answer: never empty when ours is not, most of what we
 * found found there too (same name, the box where it was), and not much more. Scores are not compared: a
 * peer may run another precision.
 */
export function sameAnswer(expected: PipelineOutput, actual: PipelineOutput): boolean {
  const want = items(expected);
  const got = items(actual);
  if (want.length === 0) return got.length === 0;
  if (got.length === 0 || got.length > Math.ceil(want.length * 1.25) + 1) return false;
  const found = want.filter((w) => got.some((g) => alike(w, g))).length;
  return found >= Math.ceil(want.length * MIN_FOUND);
}
