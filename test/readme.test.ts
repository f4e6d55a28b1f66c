import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIVE_SETTINGS, loadConfig } from '../src/config/index.js';
import { ERROR_CATALOGUE } from '../src/errors.js';
import { runCli } from './helpers/daemonProcess.js';
import { ROOT, writeTemp } from './helpers/paths.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/**
 * The live-settings lists, wherever the docs keep them (README.md, docs/*.md): a `**Reload**:` paragraph, or
 * the section under a heading that says "live settings" or "reload".
 */
function liveSettingLists(): string[] {
  const dir = join(ROOT, 'docs');
  const pages = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.md')) : [];
  return [readme, ...pages.map((n) => readFileSync(join(dir, n), 'utf8'))].flatMap((text) => [
    ...[...text.matchAll(/\*\*Reload\*\*:([\s\S]*?)(?:\n\n|$)/g)].map((m) => m[1]),
    ...[...text.matchAll(/^#+ .*(?:live settings|reload).*\n([\s\S]*?)(?=^#|(?![\s\S]))/gim)].map((m) => m[1]),
  ]);
}

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

  it('names every setting marked live, and only those', () => {
    const lists = liveSettingLists();
    expect(lists.length, 'a **Reload**: paragraph or a "live settings" heading in README.md or docs/*.md').toBeGreaterThan(0);
    // a setting path in backticks: `cameras[].maxFps`, `power.policy` (not `/status` or `keyring.ops (added)`)
    const named = lists.flatMap((l) => [...l.matchAll(/`([a-z][A-Za-z]*(?:\[\])?(?:\.[A-Za-z]+(?:\[\])?)+)`/g)].map((m) => m[1]));
    expect([...new Set(named)].sort()).toEqual([...LIVE_SETTINGS].sort());
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
