import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIVE_SETTINGS, loadConfig } from '../src/config/index.js';
import { ERROR_CATALOGUE } from '../src/errors.js';
import { OFFLOAD_REFUSALS } from '../src/offload/protocol.js';
import { runCli } from './helpers/daemonProcess.js';
import { ROOT, writeTemp } from './helpers/paths.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const DOCS = join(ROOT, 'docs');
const pages = readdirSync(DOCS).filter((n) => n.endsWith('.md'));
const page = (name: string) => readFileSync(join(DOCS, name), 'utf8');

/**
 * The live-settings lists, wherever the docs keep them (README.md, docs/*.md): a `**Reload**:` paragraph, or
 * the section under a heading that says "live settings" or "reload".
 */
function liveSettingLists(): string[] {
  return [readme, ...pages.map(page)].flatMap((text) => [
    ...[...text.matchAll(/\*\*Reload\*\*:([\s\S]*?)(?:\n\n|$)/g)].map((m) => m[1]),
    ...[...text.matchAll(/^#+ .*(?:live settings|reload).*\n([\s\S]*?)(?=^#|(?![\s\S]))/gim)].map((m) => m[1]),
  ]);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchor = (heading: string) =>
  heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

/** Every relative Markdown link in `text` (a file in `dir`) that names no file, or no heading in it. */
function brokenLinks(text: string, dir: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1])
    .filter((link) => !/^[a-z]+:/.test(link))
    .filter((link) => {
      const [file, hash] = link.split('#');
      const target = file ? join(dir, file) : null;
      if (target && !existsSync(target)) return true;
      if (!hash) return false;
      const headings = [...(target ? readFileSync(target, 'utf8') : text).matchAll(/^#+ (.+)$/gm)].map((h) => anchor(h[1]));
      return !headings.includes(hash);
    })
    .map((link) => `${relative(ROOT, dir) || '.'}: ${link}`);
}

describe('README and docs/', () => {
  it('keeps the README short, and links every page of docs/ from it, each link resolving', () => {
    expect(readme.split('\n').length).toBeLessThan(300);
    expect(pages.filter((p) => !readme.includes(`](docs/${p})`))).toEqual([]);
    expect([brokenLinks(readme, ROOT), ...pages.map((p) => brokenLinks(page(p), DOCS))].flat()).toEqual([]);
  });

  it("shows a minimal configuration that loads, and docs/configuration.md's full one", () => {
    const yamlBlock = (text: string) => /^## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/m.exec(text)![1];
    const minimal = loadConfig(writeTemp('outpost.yaml', yamlBlock(readme)), {}).config;
    expect(minimal.cameras[0]).toMatchObject({ name: 'door', pipeline: 'text', maxFps: 1 });
    const full = loadConfig(writeTemp('outpost.yaml', yamlBlock(`## Configuration\n${page('configuration.md')}`)), {}).config;
    expect(full.cameras[0]).toMatchObject({ name: 'door', maxFps: 1, motion: { masks: [[0.8, 0, 1, 0.1]] } });
    expect(full.power.policy.hot).toMatchObject({ precision: 'int8', maxFps: 1, threads: 1 });
  });

  it("lists the offload server's refusals with the status each gets", () => {
    const rows = [...page('protocols.md').matchAll(/^\| `([a-z-]+)` \| (\d+) \|$/gm)].map((m) => [m[1], Number(m[2])]);
    expect(rows).toEqual(Object.entries(OFFLOAD_REFUSALS));
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
