import { readFileSync } from 'node:fs';

export interface TextGuess {
  text: string;
  score: number;
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

/** Greedy CTC decoding of [batch, steps, classes] probabilities: argmax, merge repeats, drop blanks. */
export function decodeCtc(probs: Float32Array, batch: number, steps: number, classes: number, dictionary: readonly string[]): TextGuess[] {
  if (classes !== dictionary.length) {
    throw new Error(
      `the recogniser has ${classes} classes but the dictionary has ${dictionary.length - 2} characters (+ blank + space); use the dictionary the model was trained with`,
    );
  }
  const out: TextGuess[] = [];
  for (let b = 0; b < batch; b++) {
    let text = '';
    let sum = 0;
    let kept = 0;
    let prev = -1;
    for (let t = 0; t < steps; t++) {
      const base = (b * steps + t) * classes;
      let best = 0;
      let bestP = probs[base];
      for (let k = 1; k < classes; k++) {
        if (probs[base + k] > bestP) {
          bestP = probs[base + k];
          best = k;
        }
      }
      if (best !== 0 && best !== prev) {
        text += dictionary[best];
        sum += bestP;
        kept++;
      }
      prev = best;
    }
    out.push({ text: text.trim(), score: kept > 0 ? sum / kept : 0 });
  }
  return out;
}
