import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

/**
 * The house rules of docs/ARCHITECTURE.md, checked on the import statements of src/: each module imports
 * only what its row of the doc's module table allows (its "depends on" column, what those depend on, and
 * config, whose types every module reads), leaf files (the doc's second table) import only leaf files, nothing
 * imports daemon.ts or cli/, there are no cycles, and outside a module only its index.ts is imported. The doc
 * and the code must agree both ways: every folder and leaf file has a row, and every listed dependency is used.
 */
const DOC = readFileSync(join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');

/** The body rows of the first Markdown table under `## heading`, as cells. */
function tableRows(heading: string): string[][] {
  const section = DOC.split(/^## /m).find((s) => s.startsWith(`${heading}\n`));
  if (!section) throw new Error(`docs/ARCHITECTURE.md has no "## ${heading}" section`);
  const rows = section.split('\n').filter((l) => l.startsWith('|'));
  return rows.slice(2).map((l) =>
    l
      .slice(1, -1)
      .split(' | ')
      .map((c) => c.trim()),
  );
}

const backticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);

/** module → the modules its row says it depends on (`camera/` → `camera`). */
const DEPENDS_ON: Record<string, string[]> = Object.fromEntries(
  tableRows('Modules').map(([module, deps]) => [backticked(module)[0].replace(/\/$/, ''), deps === '—' ? [] : backticked(deps)]),
);
const LEAF_FILES = tableRows('Leaf files').map(([file]) => backticked(file)[0]);

const SRC = join(ROOT, 'src');
const isLeafFile = (m: string) => m.endsWith('.ts') && m !== 'daemon.ts' && m !== 'cli.ts';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
}

/** `camera/x.ts` → `camera`; `errors.ts` → `errors.ts`. */
const moduleOf = (file: string) => relative(SRC, file).split('/')[0];

function imports(file: string): { target: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'/gm)].map((m) => ({
    target: resolve(dirname(file), m[2]).replace(/\.js$/, '.ts'),
    typeOnly: Boolean(m[1]),
  }));
}

function allowed(module: string): Set<string> {
  const out = new Set<string>(['config']);
  const visit = (m: string) => (DEPENDS_ON[m] ?? []).forEach((d) => !out.has(d) && (out.add(d), visit(d)));
  visit(module);
  return out;
}

const edges = files(SRC).flatMap((file) => imports(file).map((i) => ({ file, from: moduleOf(file), to: moduleOf(i.target), target: i.target })));

describe('module dependency rules (docs/ARCHITECTURE.md)', () => {
  it('has a row for every module folder and every leaf file, and none for what is gone', () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory() && n !== 'cli' && n !== 'types');
    expect(Object.keys(DEPENDS_ON).sort()).toEqual(folders.sort());
    const leaves = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isFile() && isLeafFile(n));
    expect([...LEAF_FILES].sort()).toEqual(leaves.sort());
  });

  it('lists only dependencies the code has, on modules that exist', () => {
    const used = new Set(edges.map(({ from, to }) => `${from} → ${to}`));
    const stale = Object.entries(DEPENDS_ON).flatMap(([m, deps]) => deps.filter((d) => !used.has(`${m} → ${d}`)).map((d) => `${m} → ${d}`));
    expect(stale).toEqual([]);
  });

  it('modules import only down their row, leaf files only leaf files, nobody imports daemon.ts or cli/', () => {
    const bad = edges.filter(({ from, to }) => {
      if (from === to || from === 'cli' || from === 'cli.ts' || from === 'daemon.ts')
        return to === 'cli.ts' || (from !== 'cli' && from !== 'cli.ts' && to === 'cli');
      if (to === 'daemon.ts' || to === 'cli' || to === 'cli.ts') return true;
      if (isLeafFile(from)) return !isLeafFile(to) && to !== 'config';
      return !isLeafFile(to) && !allowed(from).has(to);
    });
    expect(bad.map((e) => `${relative(SRC, e.file)} → ${relative(SRC, e.target)}`)).toEqual([]);
  });

  it('from outside a module, only its index.ts is imported', () => {
    const bad = edges.filter((e) => e.from !== e.to && !isLeafFile(e.to) && !e.target.endsWith('/index.ts') && e.to !== 'daemon.ts' && e.to !== 'cli');
    expect(bad.map((e) => `${relative(SRC, e.file)} → ${relative(SRC, e.target)}`)).toEqual([]);
  });

  it('has no cycles between modules', () => {
    const graph = new Map<string, Set<string>>();
    for (const { from, to } of edges) if (from !== to) graph.set(from, (graph.get(from) ?? new Set()).add(to));
    const cycles: string[] = [];
    const walk = (node: string, path: string[]) => {
      if (path.includes(node)) return void cycles.push([...path.slice(path.indexOf(node)), node].join(' → '));
      for (const next of graph.get(node) ?? []) walk(next, [...path, node]);
    };
    for (const node of graph.keys()) walk(node, []);
    expect(cycles).toEqual([]);
  });

  it('the pipeline knows nothing of peers, uploads or the fleet; the composition root asserts nothing non-null', () => {
    const features = ['offload', 'upload', 'telemetry', 'mqtt'];
    const bad = edges.filter((e) => e.from === 'pipeline' && features.includes(e.to));
    expect(bad.map((e) => `${relative(SRC, e.file)} → ${relative(SRC, e.target)}`)).toEqual([]);
    const daemon = readFileSync(join(SRC, 'daemon.ts'), 'utf8').replace(/'[^'\n]*'|"[^"\n]*"|`[^`]*`/g, "''");
    expect(daemon.match(/[\w)\]]!(?!=)/g) ?? []).toEqual([]);
  });

  it('keeps files small and the composition root short', () => {
    const long = files(SRC)
      .map((f) => ({ f: relative(SRC, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((x) => x.lines > 400);
    expect(long).toEqual([]);
    expect(readFileSync(join(SRC, 'daemon.ts'), 'utf8').split('\n').length).toBeLessThan(150);
  });
});
