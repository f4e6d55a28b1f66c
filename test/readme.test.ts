import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIVE_SETTINGS, loadConfig } from '../src/config/index.js';
import { ERROR_CATALOGUE } from '../src/errors.js';
import { runCli } from './helpers/daemonProcess.js';
import { ROOT, writeTemp } from './helpers/paths.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('README', () => {
  it('shows a configuration that loads', () => {
    const block = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1];
    const { config } = loadConfig(writeTemp('outpost.yaml', block), {});
    expect(config.cameras[0]).toMatchObject({ name: 'door', maxFps: 1, motion: { masks: [[0.8, 0, 1, 0.1]] } });
    expect(config.power.policy.hot).toMatchObject({ precision: 'int8', maxFps: 1, threads: 1 });
  });

  it('has one line per error code, with the exit code the CLI uses', () => {
    const rows = [...readme.matchAll(/^\| `(OUTPOST_E_[A-Z_]+)` \| (\d+) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), m[3]]);
    expect(rows.map(([code, exit]) => [code, exit])).toEqual(Object.entries(ERROR_CATALOGUE).map(([code, e]) => [code, e.exit]));
    for (const [code, , means] of rows)
      expect(means).toBe(
        ERROR_CATALOGUE[code as keyof typeof ERROR_CATALOGUE].means
          .replace('node.stateDir', '`node.stateDir`')
          .replace('FILE:LINE:COL: path: message', '`FILE:LINE:COL: path: message`'),
      );
  });

  it('names every live setting', () => {
    const section = /\*\*Reload\*\*:([\s\S]*?)\n\n/.exec(readme)![1];
    for (const setting of LIVE_SETTINGS) expect(section).toContain(`\`${setting}\``);
  });

  it("documents the operator tools' broker flags, which each tool takes", () => {
    const flags = ['--username', '--password-file', '--ca', '--cert', '--cert-key', '--config'];
    for (const flag of flags) expect(readme).toMatch(new RegExp(`[\\s\`]${flag} `));
    for (const tool of ['command', 'monitor', 'collect']) {
      const help = runCli([tool, '--help']).stdout;
      for (const flag of flags) expect(help).toMatch(new RegExp(`${flag} <`));
    }
  });
});
