import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node, type ScalarTag } from 'yaml';
import type { z } from 'zod';
import { OutpostError } from '../errors.js';
import { resolveBuiltin, builtinNames } from './builtins.js';
import { configSchema, DETECTOR_TYPES, type OutpostConfig } from './schema.js';
import { closest, knownKeysAt, leafPaths, refMessage } from './schemaWalk.js';
import { networkProblems } from './networkChecks.js';
import { resolveConfig, type ResolvedConfig } from './resolve.js';
import { decoderFiles, mapDecoderFiles } from './decoderFiles.js';

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export class ConfigError extends OutpostError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('OUTPOST_E_CONFIG', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path}: ${p.message}`;
}

export interface LoadedConfig {
  file: string;
  config: Readonly<ResolvedConfig>;
  /** Env variables that overrode a setting, for the start-up log. */
  envOverrides: string[];
}

const ENV_PREFIX = 'OUTPOST_';
/** Variables of ours that are not settings. */
// OUTPOST_ONNXRUNTIME picks the ORT build before any config is read (runtime/ortBinding.ts)
// OUTPOST_TEST_DEPLOY_HOLD parks a deployment at a step for the SIGKILL tests (deploy/deployer.ts)
const ENV_RESERVED = new Set(['OUTPOST_CONFIG', 'OUTPOST_ONNXRUNTIME', 'OUTPOST_TEST_DEPLOY_HOLD']);

type PathKey = string | number;

/** Reads, validates, resolves and freezes a config file; throws ConfigError with every problem found. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ConfigError([
      { file, line: 1, col: 1, path: '(file)', message: `cannot read the config file (${(err as NodeJS.ErrnoException).code ?? err}); pass --config FILE` },
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, customTags: [secretFileTag(dirname(abs))], prettyErrors: false });
  const where = new PositionFinder(file, doc, lines);
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => ({ file, ...where.ofOffset(e.pos[0]), path: '(yaml)', message: e.message.split('\n')[0] })));
  }
  const raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  const { data, overrides, problems: envProblems } = applyEnv(raw, env);
  const parsed = configSchema.safeParse(data);
  const problems = [...envProblems];
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => where.ofIssue(i, data, overrides)));
  else problems.push(...semanticProblems(parsed.data, dirname(abs)).map(({ path, message }) => where.ofPath(path, message, overrides)));
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { file: abs, config: deepFreeze(resolveConfig(resolvePaths(parsed.data, dirname(abs)))), envOverrides: [...overrides.keys()] };
}

/** `password: !file /etc/outpost/secret` reads the secret from a file (trailing newline trimmed). */
function secretFileTag(baseDir: string): ScalarTag {
  return {
    tag: '!file',
    resolve(value: string, onError: (msg: string) => void) {
      try {
        return readFileSync(resolve(baseDir, value), 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        onError(`!file ${value}: cannot read the secret file (${(err as NodeJS.ErrnoException).code ?? err})`);
        return '';
      }
    },
  };
}

function envName(path: readonly string[]): string {
  return ENV_PREFIX + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** OUTPOST_STATUS_PORT=9000 sets status.port; OUTPOST_X_FILE=/path reads the value of OUTPOST_X from a file. */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv) {
  const leaves = new Map(leafPaths(configSchema).map((l) => [envName(l.path), l] as const));
  const overrides = new Map<string, string>(); // dotted path -> env variable
  const problems: ConfigProblem[] = [];
  const data = structuredClone(raw);
  for (const [key, rawValue] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || ENV_RESERVED.has(key) || rawValue === undefined) continue;
    const fromFile = key.endsWith('_FILE') && leaves.has(key.slice(0, -5));
    const name = fromFile ? key.slice(0, -5) : key;
    const leaf = leaves.get(name);
    const at = { file: `env:${key}`, line: 1, col: 1 };
    if (!leaf) {
      const hint = closest(name, [...leaves.keys()]);
      problems.push({ ...at, path: '(env)', message: `${key} names no setting${hint ? ` (did you mean ${hint}?)` : ''}` });
      continue;
    }
    let value = rawValue;
    if (fromFile) {
      try {
        value = readFileSync(rawValue, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push({ ...at, path: leaf.path.join('.'), message: `cannot read ${rawValue} (${(err as NodeJS.ErrnoException).code ?? err})` });
        continue;
      }
    }
    setIn(data, leaf.path, coerceEnv(value, leaf.schema));
    overrides.set(leaf.path.join('.'), key);
  }
  return { data, overrides, problems };
}

/** Env values are strings: take the first reading (JSON, plain string, comma list) the setting accepts. */
function coerceEnv(value: string, schema: z.ZodType): unknown {
  const candidates: unknown[] = [];
  try {
    candidates.push(JSON.parse(value));
  } catch {
    /* not JSON: try the other readings */
  }
  candidates.push(
    value,
    value.split(',').map((s) => s.trim()),
  );
  return candidates.find((c) => schema.safeParse(c).success) ?? candidates[0];
}

function setIn(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== 'object' || cur[key] === null) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

class PositionFinder {
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  ofOffset(offset: number): { line: number; col: number } {
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  /** The deepest node that exists along the path (a missing key points at its parent). */
  private nodeAt(path: readonly PathKey[]): Node | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return node;
    }
    return this.doc.contents ?? undefined;
  }

  private keyNode(path: readonly PathKey[], key: string): Node | undefined {
    const parent = this.nodeAt(path);
    if (!isMap(parent)) return undefined;
    const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
    return pair && isScalar(pair.key) ? pair.key : undefined;
  }

  ofPath(path: readonly PathKey[], message: string, overrides: Map<string, string>): ConfigProblem {
    const dotted = dottedPath(path);
    const envKey = [...overrides.entries()].find(([p]) => dotted === p || dotted.startsWith(p + '.') || dotted.startsWith(p + '['))?.[1];
    if (envKey) return { file: `env:${envKey}`, line: 1, col: 1, path: dotted, message };
    const node = this.nodeAt(path);
    const pos = node?.range ? this.ofOffset(node.range[0]) : { line: 1, col: 1 };
    return { file: this.file, ...pos, path: dotted || '(root)', message };
  }

  ofIssue(issue: z.core.$ZodIssue, data: unknown, overrides: Map<string, string>): ConfigProblem {
    const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
    if (issue.code === 'invalid_union') {
      // the one branch whose type matched and failed inside says more than "Invalid input"
      const inner = issue.errors.filter((b) => b.length > 0 && b[0].path.length > 0);
      if (inner.length === 1) return this.ofIssue({ ...inner[0][0], path: [...issue.path, ...inner[0][0].path] }, data, overrides);
    }
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(configSchema, path, data);
      const key = issue.keys[0];
      const hint = closest(key, known);
      const message = `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed: ${known.join(', ')}`;
      const node = this.keyNode(path, key);
      if (node?.range) return { file: this.file, ...this.ofOffset(node.range[0]), path: dottedPath([...path, key]), message };
      return this.ofPath([...path, key], message, overrides);
    }
    return this.ofPath(path, issueMessage(issue, valueAt(data, path)), overrides);
  }
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  return path.reduce<unknown>((acc, k) => (typeof acc === 'object' && acc !== null ? (acc as Record<PathKey, unknown>)[k] : undefined), data);
}

/** `"cuad" is not one of: a, b (did you mean "cuda"?)` for a misspelt choice. */
function choiceMessage(value: unknown, choices: readonly unknown[]): string | null {
  if (typeof value !== 'string' || !choices.every((c) => typeof c === 'string')) return null;
  const hint = closest(value, choices as string[]);
  return `"${value}" is not one of: ${choices.join(', ')}${hint ? ` (did you mean "${hint}"?)` : ''}`;
}

function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code === 'invalid_value') return choiceMessage(value, issue.values) ?? issue.message;
  if (issue.code === 'invalid_union' && issue.errors.length > 0 && issue.errors.every((b) => b[0]?.path.length === 0)) {
    const firsts = issue.errors.map((b) => b[0]);
    if (firsts.every((i) => i.code === 'invalid_type'))
      return `expected ${firsts.map((i) => (i as { expected: string }).expected).join(' or ')}, received ${Array.isArray(value) ? 'array' : typeof value}`;
    const choices = issue.errors.flatMap((b) => (b[0]?.code === 'invalid_value' ? b[0].values : []));
    const hint = typeof value === 'string' ? closest(value, choices.map(String)) : undefined;
    const expected = issue.errors.map((b) => b[0]?.message.replace(/^Invalid (input|option): /, '')).join(', or ');
    return `${expected}${hint ? ` (did you mean "${hint}"?)` : ''}`;
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return `is required (${issue.message.replace('Invalid input: ', '')})`;
  if (issue.code === 'invalid_union' && 'note' in issue && issue.note === 'No matching discriminator') {
    return `${issue.message}; check the "type" field`;
  }
  return issue.message;
}

function dottedPath(path: readonly PathKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** Checks that need more than one field: references between sections and files on disk. */
function semanticProblems(cfg: OutpostConfig, baseDir: string): { path: PathKey[]; message: string }[] {
  const out: { path: PathKey[]; message: string }[] = [];
  const fileMissing = (file: string, path: PathKey[], what: string) => {
    const resolved = resolveBuiltin(file);
    if (resolved === null) out.push({ path, message: `unknown builtin "${file}"; builtins are ${builtinNames().join(', ')}` });
    else if (!existsSync(resolve(baseDir, resolved))) out.push({ path, message: `${what} ${resolve(baseDir, resolved)} does not exist` });
    else if (statSync(resolve(baseDir, resolved)).isDirectory() && !existsSync(join(resolve(baseDir, resolved), 'manifest.json'))) {
      out.push({
        path,
        message: `${resolve(baseDir, resolved)} is a folder without manifest.json; name an .onnx file or a folder written by outpost optimize`,
      });
    }
  };
  const seen = new Set<string>();
  cfg.cameras.forEach((cam, i) => {
    if (seen.has(cam.name)) out.push({ path: ['cameras', i, 'name'], message: `camera name "${cam.name}" is used twice; names must be unique` });
    seen.add(cam.name);
    if (!cfg.pipelines[cam.pipeline]) out.push({ path: ['cameras', i, 'pipeline'], message: refMessage('pipeline', cam.pipeline, Object.keys(cfg.pipelines)) });
    if (cam.source.type === 'directory') {
      const dir = resolve(baseDir, cam.source.path);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) out.push({ path: ['cameras', i, 'source', 'path'], message: `folder ${dir} does not exist` });
    }
    if (cam.source.type === 'file' && !existsSync(resolve(baseDir, cam.source.path))) {
      out.push({ path: ['cameras', i, 'source', 'path'], message: `video file ${resolve(baseDir, cam.source.path)} does not exist` });
    }
    if (cam.reconnect.maxMs < cam.reconnect.initialMs)
      out.push({ path: ['cameras', i, 'reconnect', 'maxMs'], message: 'must be at least reconnect.initialMs' });
  });
  out.push(...networkProblems(cfg, baseDir));
  const th = cfg.power.thresholds;
  if (th && !(th.warm < th.hot && th.hot < th.critical))
    out.push({ path: ['power', 'thresholds'], message: `needs warm < hot < critical (got ${th.warm}, ${th.hot}, ${th.critical})` });
  for (const [name, model] of Object.entries(cfg.models)) fileMissing(model.file, ['models', name, 'file'], 'model file');
  for (const [name, pipeline] of Object.entries(cfg.pipelines)) {
    pipeline.stages.forEach((stage, i) => {
      const at: PathKey[] = ['pipelines', name, 'stages', i];
      if (!cfg.models[stage.model]) out.push({ path: [...at, 'model'], message: refMessage('model', stage.model, Object.keys(cfg.models)) });
      if (i === 0 && stage.input === 'crops') out.push({ path: [...at, 'input'], message: 'the first stage has no boxes to crop from; use input: frame' });
      const isDetector = (DETECTOR_TYPES as readonly string[]).includes(stage.decoder.type);
      if (i > 0 && isDetector) out.push({ path: [...at, 'decoder', 'type'], message: `a ${stage.decoder.type} detector must be the first stage` });
      if (i > 0 && stage.input === 'crops' && !(DETECTOR_TYPES as readonly string[]).includes(pipeline.stages[i - 1].decoder.type)) {
        out.push({ path: [...at, 'input'], message: `stage "${pipeline.stages[i - 1].name}" produces no boxes to crop` });
      }
      for (const { field, file } of decoderFiles(stage.decoder)) fileMissing(file, [...at, 'decoder', field], field === 'labels' ? 'labels file' : field);
      if (stage.decoder.type === 'db' && stage.decoder.maxSide % 32 !== 0)
        out.push({ path: [...at, 'decoder', 'maxSide'], message: 'must be a multiple of 32' });
    });
  }
  return out;
}

const TLS_FILES = ['ca', 'cert', 'key'] as const;

/** Relative paths in the config are relative to the config file; builtins become absolute paths. */
function resolvePaths(cfg: OutpostConfig, baseDir: string): OutpostConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const file = (p: string) => abs(resolveBuiltin(p) ?? p);
  const mqtt = cfg.telemetry.mqtt;
  return {
    ...cfg,
    node: { ...cfg.node, stateDir: abs(cfg.node.stateDir), ...(cfg.node.keysDir ? { keysDir: abs(cfg.node.keysDir) } : {}) },
    telemetry: mqtt ? { mqtt: { ...mqtt, ...Object.fromEntries(TLS_FILES.flatMap((f) => (mqtt[f] ? [[f, abs(mqtt[f])]] : []))) } } : cfg.telemetry,
    power: { ...cfg.power, sysfsRoot: abs(cfg.power.sysfsRoot) },
    status:
      typeof cfg.status.auth === 'object' && 'tokenFile' in cfg.status.auth
        ? { ...cfg.status, auth: { tokenFile: abs(cfg.status.auth.tokenFile) } }
        : cfg.status,
    cameras: cfg.cameras.map((c) =>
      c.source.type === 'directory' || c.source.type === 'file' ? { ...c, source: { ...c.source, path: abs(c.source.path) } } : c,
    ),
    models: Object.fromEntries(
      Object.entries(cfg.models).map(([k, m]) => [
        k,
        { ...m, file: file(m.file), optimize: { ...m.optimize, ...(m.optimize.calibration ? { calibration: abs(m.optimize.calibration) } : {}) } },
      ]),
    ),
    pipelines: Object.fromEntries(
      Object.entries(cfg.pipelines).map(([k, p]) => [k, { ...p, stages: p.stages.map((s) => ({ ...s, decoder: mapDecoderFiles(s.decoder, file) })) }]),
    ),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}
