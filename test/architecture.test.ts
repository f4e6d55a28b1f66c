import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

/**
 * The house rules of ../shared/docs/DESIGN.md, checked on the import statements of src/: each module imports
 * only what its row allows (its "depends on" column, what those depend on, and config, whose types every
 * module reads), leaf files import only leaf files, nothing imports daemon.ts or cli/, there are no cycles,
 * and outside a module only its index.ts is imported.
 */
const DEPENDS_ON: Record<string, string[]> = {
  config: [],
  camera: ['config'],
  vision: [],
  onnx: [],
  optimize: ['onnx', 'vision'],
  runtime: ['optimize'],
  pipeline: ['camera', 'vision', 'runtime', 'offload'],
  crypto: [],
  // bounded HTTP servers and body reading, shared by every server the node runs
  net: [],
  mqtt: ['config'],
  offload: ['crypto', 'mqtt', 'net'],
  upload: ['crypto', 'vision', 'mqtt', 'net'],
  power: ['config'],
  // the live page draws each camera's boxes with vision's drawing (DESIGN.md lists drawing under vision)
  telemetry: ['crypto', 'mqtt', 'vision', 'net'],
  jobs: [],
  // signed deployments of config and models: verified like commands, reported over the node's broker link
  deploy: ['crypto', 'mqtt', 'pipeline'],
  service: [],
};

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

describe('module dependency rules (DESIGN.md)', () => {
  it('every module folder has a row in the table', () => {
    const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory() && n !== 'cli' && n !== 'types');
    expect(folders.filter((f) => !(f in DEPENDS_ON))).toEqual([]);
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

  it('keeps files small and the composition root short', () => {
    const long = files(SRC)
      .map((f) => ({ f: relative(SRC, f), lines: readFileSync(f, 'utf8').split('\n').length }))
      .filter((x) => x.lines > 400);
    expect(long).toEqual([]);
    expect(readFileSync(join(SRC, 'daemon.ts'), 'utf8').split('\n').length).toBeLessThan(150);
  });
});
