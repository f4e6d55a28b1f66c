import type { PipelineOutput } from './types.js';

/**
 * A short human summary of a pipeline's output, one string per thing found: what the result log, `infer`, the
 * status page and MQTT events show. Text lines read as text; detections as their text, class or label and score.
 */
export function summariseOutput(o: PipelineOutput): string[] {
  if (o.lines) return o.lines.map((l) => l.text);
  if (o.detections) return o.detections.map((d) => `${d.text ?? d.classes?.[0]?.label ?? d.label} ${d.score.toFixed(2)}`);
  if (o.classes) return o.classes.slice(0, 1).map((c) => `${c.label} ${c.score.toFixed(2)}`);
  return o.text !== undefined ? [o.text] : [];
}
