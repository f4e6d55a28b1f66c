import { readFileSync } from 'node:fs';
import type { TextWord } from '../types.js';

/** One decoded character and the CTC time steps its run covered (first..last, inclusive). */
export interface CtcChar {
  char: string;
  first: number;
  last: number;
  score: number;
  /** The space class's probability summed over the blank steps between this character and the one before. */
  spaceBefore: number;
}

export interface TextGuess {
  /** The line's words joined by single spaces. */
  text: string;
  score: number;
  /** The characters of `text` without its spaces, with their time steps. */
  chars: CtcChar[];
  /** Each word as a range of `chars` (end exclusive). */
  words: { start: number; end: number }[];
  /** The line's character pitch in time steps (median distance between neighbouring centres; 0 under 3 characters). */
  pitch: number;
}

/**
 * PaddleOCR's character list: index 0 is the CTC blank, then one character per line of the file, then a
 * space (the models are trained with use_space_char).
 */
export function loadDictionary(file: string): string[] {
  const chars = readFileSync(file, 'utf8').split(/\r?\n/);
  if (chars[chars.length - 1] === '') chars.pop();
  return ['', ...chars, ' '];
}

/**
 * How much the model must lean towards a space in a wide gap it left blank. Measured on text-frames: gaps
 * inside words hold at most 0.001 of space probability, narrow word gaps that the model did not read as a
 * space 0.067 or more.
 */
const SPACE_EVIDENCE = 0.02;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const centre = (c: CtcChar) => (c.first + c.last) / 2;

/**
 * Splits a line's characters into words: where the model read a space, and where two characters sit further
 * apart than the line's own character pitch with the model leaning towards a space in between. Steps are
 * 8 px of a 48 px high line, too coarse for the distance alone: narrow glyphs next to wide ones (`WTJ-6131`)
 * sit as far apart as the narrow spaces of signs (`VALVE 9`), but only the spaces draw the space class.
 */
export function splitWords(chars: readonly CtcChar[], spaces: ReadonlySet<number>): { words: { start: number; end: number }[]; pitch: number } {
  const steps = chars.slice(1).map((c, i) => centre(c) - centre(chars[i]));
  const pitch = steps.length >= 2 ? median(steps) : 0;
  const gap = (i: number) => pitch > 0 && steps[i - 1] > pitch && chars[i].spaceBefore >= SPACE_EVIDENCE;
  const words: { start: number; end: number }[] = [];
  let start = 0;
  for (let i = 1; i <= chars.length; i++) {
    if (i === chars.length || spaces.has(i) || gap(i)) {
      if (i > start) words.push({ start, end: i });
      start = i;
    }
  }
  return { words, pitch };
}

function argmax(probs: Float32Array, base: number, classes: number): number {
  let best = 0;
  for (let k = 1; k < classes; k++) if (probs[base + k] > probs[base + best]) best = k;
  return best;
}

function decodeRow(probs: Float32Array, offset: number, steps: number, classes: number, dictionary: readonly string[]): TextGuess {
  const chars: CtcChar[] = [];
  const spaces = new Set<number>();
  const space = classes - 1;
  let prev = -1;
  let spaceMass = 0;
  for (let t = 0; t < steps; t++) {
    const base = offset + t * classes;
    const best = argmax(probs, base, classes);
    if (best === 0) spaceMass += probs[base + space];
    else if (best === space) spaces.add(chars.length);
    else if (best === prev) chars[chars.length - 1].last = t;
    else {
      chars.push({ char: dictionary[best], first: t, last: t, score: probs[base + best], spaceBefore: spaceMass });
      spaceMass = 0;
    }
    prev = best;
  }
  const { words, pitch } = splitWords(chars, spaces);
  const text = words
    .map((w) =>
      chars
        .slice(w.start, w.end)
        .map((c) => c.char)
        .join(''),
    )
    .join(' ');
  const score = chars.length > 0 ? chars.reduce((s, c) => s + c.score, 0) / chars.length : 0;
  return { text, score, chars, words, pitch };
}

/**
 * Greedy CTC decoding of [batch, steps, classes] probabilities: argmax, merge repeats, drop blanks, with
 * word breaks from the characters' positions.
 */
export function decodeCtc(probs: Float32Array, batch: number, steps: number, classes: number, dictionary: readonly string[]): TextGuess[] {
  if (classes !== dictionary.length) {
    throw new Error(
      `the recogniser has ${classes} classes but the dictionary has ${dictionary.length - 2} characters (+ blank + space); use the dictionary the model was trained with`,
    );
  }
  const out: TextGuess[] = [];
  for (let b = 0; b < batch; b++) out.push(decodeRow(probs, b * steps * classes, steps, classes, dictionary));
  return out;
}

/**
 * The words of a line read from a crop: `box` is the line in the frame, `contentWidth` the crop's width after
 * resizing and `tensorWidth` the padded width the model saw over `steps` time steps. A word spans from half a
 * pitch before its first character's centre to half a pitch after its last one's, inside the line.
 */
export function wordsOf(guess: TextGuess, box: readonly number[], contentWidth: number, tensorWidth: number, steps: number): TextWord[] {
  const scale = ((tensorWidth / steps) * (box[2] - box[0])) / contentWidth;
  const half = (guess.pitch || 1) / 2;
  const x = (step: number) => Math.min(box[2], Math.max(box[0], box[0] + (step + 0.5) * scale));
  return guess.words.map(({ start, end }) => {
    const chars = guess.chars.slice(start, end);
    return {
      text: chars.map((c) => c.char).join(''),
      score: chars.reduce((s, c) => s + c.score, 0) / chars.length,
      box: [x(centre(chars[0]) - half), box[1], x(centre(chars[chars.length - 1]) + half), box[3]],
    };
  });
}
