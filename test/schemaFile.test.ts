import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/daemonProcess.js';
import { ROOT } from './helpers/paths.js';

describe('config/outpost.schema.json', () => {
  it('is what the zod schema generates (run `npm run schema` after changing an option)', () => {
    const r = runCli(['schema']);
    expect(r.code).toBe(0);
    expect(readFileSync(join(ROOT, 'config/outpost.schema.json'), 'utf8')).toBe(r.stdout);
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.status.properties.port).toMatchObject({ type: 'integer', default: 8787, maximum: 65535 });
    expect(schema.additionalProperties).toBe(false);
  });
});
