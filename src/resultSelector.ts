import { summariseOutput } from './resultSummary.js';
import type { Result } from './types.js';
import type { SelectionMode } from './vocabulary.js';

export interface Selection {
  mode: SelectionMode;
  minScore: number;
}

/**
 * Which results go out (MQTT events, uploads), per camera name or `*`: every one, each change of what was
 * read, or any score at or above a threshold. Remembers one summary per camera (bounded by the cameras).
 */
export class ResultSelector {
  private readonly last = new Map<string, string>();

  constructor(private rules: Readonly<Record<string, Selection>>) {}

  configure(rules: Readonly<Record<string, Selection>>): void {
    this.rules = rules;
  }

  select(r: Result): boolean {
    const rule = this.rules[r.camera] ?? this.rules['*'];
    if (!rule) return false;
    const summary = summariseOutput(r.output).join('\n');
    const changed = this.last.get(r.camera) !== summary;
    this.last.set(r.camera, summary);
    if (rule.mode === 'all') return true;
    if (rule.mode === 'change') return changed;
    const o = r.output;
    const scores = [...(o.detections ?? []).map((d) => d.score), ...(o.lines ?? []).map((l) => l.score), ...(o.classes ?? []).map((c) => c.score)];
    return scores.some((s) => s >= rule.minScore);
  }
}
