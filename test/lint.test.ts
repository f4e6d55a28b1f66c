import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

/**
 * No promise is left floating (issue 19): typescript-eslint's no-floating-promises, `void` included, and
 * no-misused-promises over src/, with the type information of TypeScript 5 (tools/lint). A floating promise that
 * rejects is an unhandled rejection in a long-running daemon; every one must be awaited or given a `.catch`.
 */
describe('static checks', () => {
  it('src/ leaves no promise floating', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'tools/lint/run.js'), '--json'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
    const results = JSON.parse(r.stdout) as { filePath: string; messages: { line: number; ruleId: string; message: string }[] }[];
    const problems = results.flatMap((f) => f.messages.map((m) => `${f.filePath.slice(ROOT.length + 1)}:${m.line} ${m.ruleId}: ${m.message}`));
    expect(problems).toEqual([]);
    expect(r.status).toBe(0);
  });
});
