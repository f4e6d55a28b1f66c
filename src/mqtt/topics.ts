import { OutpostError } from '../errors.js';

/**
 * A topic this node may publish to: levels of safe characters, no wildcard (`+`, `#`), no empty level, not a
 * `$` system topic. Everything the node publishes goes through here; a bad id never reaches the broker.
 */
export function isSafeTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= 1024 && !topic.startsWith('$') && topic.split('/').every((l) => /^[A-Za-z0-9_.-]+$/.test(l));
}

export function assertTopic(topic: string): string {
  if (!isSafeTopic(topic)) {
    throw new OutpostError('OUTPOST_E_INTERNAL', `refusing to publish to topic ${JSON.stringify(topic)}: only letters, digits, ".", "-" and "_" levels`);
  }
  return topic;
}

/** Whether a topic matches a subscription filter with `+` and `#`. */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
