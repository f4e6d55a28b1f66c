import { stringify } from 'yaml';
import type { KeyRole } from '../../src/vocabulary.js';

/**
 * Daemon configs for tests, built as data and written with `yaml.stringify`: a test states the sections it
 * cares about and changes a copy with `merged`, instead of patching YAML text (a patch that no longer matches
 * changes nothing, and the test then runs on a config nobody meant).
 */
export type ConfigData = { [key: string]: unknown };

const isObject = (v: unknown): v is ConfigData => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `base` with each of `changes` merged in turn: objects key by key, lists and values replaced, `undefined` removes a key. */
export function merged(base: ConfigData, ...changes: ConfigData[]): ConfigData {
  return changes.reduce<ConfigData>((out, change) => {
    const next: ConfigData = { ...out };
    for (const [key, value] of Object.entries(change)) {
      if (value === undefined) delete next[key];
      else next[key] = isObject(value) && isObject(next[key]) ? merged(next[key], value) : value;
    }
    return next;
  }, base);
}

/** The YAML a user would write for these sections (merged in order). */
export const configYaml = (...sections: ConfigData[]): string => stringify(merged({}, ...sections));

/** A node: its name and state folder, the status server on `port` (0: any free port), JSON logs. */
export const node = (name: string, stateDir: string, port = 0): ConfigData => ({
  node: { name, stateDir },
  status: { port },
  logging: { format: 'json' },
});

const DET = { file: 'builtin:ppocrv4-det' };
const REC = { file: 'builtin:ppocrv4-rec' };
const DETECT = { name: 'detect', model: 'det', decoder: { type: 'db' } };
const RECOGNISE = { name: 'recognise', model: 'rec', input: 'crops', decoder: { type: 'ctc' } };

/** The PP-OCRv4 detector alone, as pipeline `text`. */
export const detector = (): ConfigData => ({ models: { det: DET }, pipelines: { text: { stages: [DETECT] } } });

/** The PP-OCRv4 detector and the recogniser on its crops, as pipeline `text` (stage names may be changed). */
export const ocr = (recognise = 'recognise'): ConfigData => ({
  models: { det: DET, rec: REC },
  pipelines: { text: { stages: [DETECT, { ...RECOGNISE, name: recognise }] } },
});

/** One camera, the only one: `cameras: [camera]`. */
export const camera = (name: string, source: ConfigData, more: ConfigData = {}): ConfigData => ({ cameras: [{ name, source, ...more }] });

/** A folder of images read at `fps`, once through unless `loop`. */
export const folder = (path: string, fps: number, loop = false): ConfigData => ({ type: 'directory', path, fps, loop });

/** A keyring entry for public keys (as `outpost keys show` or generateKeys give them), trusted for `roles`. */
export const trusted = (name: string, keys: { sign: string; box?: string }, ...roles: KeyRole[]): ConfigData => ({
  name,
  sign: keys.sign,
  ...(keys.box ? { box: keys.box } : {}),
  roles,
});
