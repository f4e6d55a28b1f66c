import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, formatProblem, loadConfig, planReload, resolveConfig } from '../src/config/index.js';
import { tempDir, writeTemp } from './helpers/paths.js';

const VALID = `node:
  name: test-node
  stateDir: ./state
cameras:
  - name: cam1
    source: { type: demo, fps: 3 }
    pipeline: text
models:
  det: { file: builtin:ppocrv4-det }
  rec: { file: builtin:ppocrv4-rec }
pipelines:
  text:
    stages:
      - { name: detect, model: det, decoder: { type: db } }
      - { name: read, model: rec, input: crops, decoder: { type: ctc } }
status:
  port: 9999
`;

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const file = writeTemp('outpost.yaml', yaml);
  try {
    loadConfig(file, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => formatProblem({ ...p, file: p.file === file ? 'CFG' : p.file }));
  }
  throw new Error('expected the config to be rejected');
}

describe('config loading', () => {
  it('fills every default and resolves paths relative to the file', () => {
    const dir = tempDir();
    const file = writeTemp('outpost.yaml', VALID, dir);
    const { config } = loadConfig(file, {});
    expect(config.runtime).toEqual({
      providers: 'auto',
      providerOptions: {},
      threads: 0,
      cacheOptimizedGraphs: true,
      cpuMemArena: false,
      deviceId: 0,
      inflightFrames: 2,
    });
    expect(config.status).toMatchObject({ host: '127.0.0.1', port: 9999 });
    expect(config.node.stateDir).toBe(join(dir, 'state'));
    expect(config.models.det.file).toMatch(/ch_PP-OCRv4_det_infer\.onnx$/);
    expect(config.pipelines.text.stages[0].decoder).toMatchObject({ type: 'db', threshold: 0.3, maxSide: 960 });
    expect(Object.isFrozen(config.cameras[0])).toBe(true);
  });

  it('reports YAML syntax errors with their line', () => {
    const out = problems('cameras:\n  - name: a\n    source: { type: demo\nstatus: {}\n');
    expect(out[0]).toMatch(/^CFG:4:\d+: \(yaml\): /);
  });

  it('names unknown keys with their line and a did-you-mean', () => {
    const out = problems(VALID.replace('  port: 9999', '  prot: 9999'));
    expect(out).toEqual([expect.stringMatching(/^CFG:17:3: status\.prot: unknown key "prot" \(did you mean "port"\?\)/)]);
  });

  it('reports wrong types at the value', () => {
    const out = problems(VALID.replace('port: 9999', 'port: "high"'));
    expect(out).toEqual([expect.stringMatching(/^CFG:17:9: status\.port: Invalid input: expected number, received string$/)]);
  });

  it('reports out-of-range values', () => {
    const out = problems(VALID.replace('fps: 3', 'fps: 500'));
    expect(out).toEqual([expect.stringMatching(/^CFG:6:32: cameras\[0\]\.source\.fps: Too big: expected number to be <=120$/)]);
  });

  it('reports an unknown camera source type', () => {
    const out = problems(VALID.replace('type: demo', 'type: webcam'));
    expect(out[0]).toMatch(/^CFG:6:\d+: cameras\[0\]\.source\.type: .*check the "type" field/);
  });

  it('reports missing files and broken references between sections', () => {
    const out = problems(VALID.replace('builtin:ppocrv4-rec', './nowhere.onnx').replace('pipeline: text', 'pipeline: txt'));
    expect(out).toContainEqual(expect.stringMatching(/^CFG:7:15: cameras\[0\]\.pipeline: no pipeline named "txt" \(did you mean "text"\?\)/));
    expect(out).toContainEqual(expect.stringMatching(/^CFG:10:16: models\.rec\.file: model file .*nowhere\.onnx does not exist$/));
  });

  it('lists every problem at once', () => {
    const out = problems(VALID.replace('port: 9999', 'port: -1').replace('name: test-node', 'nmae: test-node'));
    expect(out).toHaveLength(2);
  });

  it('takes overrides from OUTPOST_<PATH> env variables, typed by the schema', () => {
    const file = writeTemp('outpost.yaml', VALID);
    const { config, envOverrides } = loadConfig(file, { OUTPOST_STATUS_PORT: '8123', OUTPOST_RUNTIME_PROVIDERS: 'cuda,cpu', OUTPOST_LOGGING_RESULTS: 'false' });
    expect(config.status.port).toBe(8123);
    expect(config.runtime.providers).toEqual(['cuda', 'cpu']);
    expect(config.logging.results).toBe(false);
    expect(envOverrides.sort()).toEqual(['logging.results', 'runtime.providers', 'status.port']);
  });

  it('names the env variable when an override is wrong or unknown', () => {
    expect(problems(VALID, { OUTPOST_STATUS_PORT: '99999' })).toEqual([expect.stringMatching(/^env:OUTPOST_STATUS_PORT:1:1: status\.port: Too big/)]);
    expect(problems(VALID, { OUTPOST_STATUS_PROT: '1' })).toEqual([
      expect.stringMatching(/OUTPOST_STATUS_PROT names no setting \(did you mean OUTPOST_STATUS_PORT\?\)/),
    ]);
  });

  it('reads secrets from files, with !file and with OUTPOST_<PATH>_FILE', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'name.txt'), 'from-a-file\n');
    const file = writeTemp('outpost.yaml', VALID.replace('name: test-node', 'name: !file name.txt'), dir);
    expect(loadConfig(file, {}).config.node.name).toBe('from-a-file');
    writeFileSync(join(dir, 'host.txt'), '127.0.0.2\n');
    expect(loadConfig(file, { OUTPOST_STATUS_HOST_FILE: join(dir, 'host.txt') }).config.status.host).toBe('127.0.0.2');
    const missing = problems(VALID.replace('name: test-node', 'name: !file /no/such/secret'));
    expect(missing[0]).toMatch(/^CFG:2:\d+: \(yaml\): !file \/no\/such\/secret: cannot read the secret file \(ENOENT\)/);
  });

  it('says when the file itself cannot be read', () => {
    expect(() => loadConfig('/no/such/outpost.yaml', {})).toThrow(/cannot read the config file \(ENOENT\)/);
  });

  it('resolves what its checks guaranteed: the keys folder, one device id, the collector keys and url', () => {
    const dir = tempDir();
    const key = (c: string) => Buffer.alloc(32, c).toString('base64');
    const upload = `keyring:\n  - { name: hq, box: ${key('b')}, sign: ${key('s')}, roles: [collector] }\nupload:\n  collector: { url: "http://127.0.0.1:1", key: hq }\n`;
    const { config } = loadConfig(writeTemp('outpost.yaml', VALID + upload, dir), {});
    expect(config.node).toMatchObject({ keysDir: join(dir, 'state', 'keys'), deviceId: 'test-node' });
    expect(config.upload).toMatchObject({ transport: 'http', collector: { url: 'http://127.0.0.1:1', keys: { box: key('b'), sign: key('s') } } });
    const fleet = 'telemetry:\n  mqtt: { url: "mqtt://127.0.0.1:1", deviceId: gate-3 }\n';
    expect(loadConfig(writeTemp('outpost.yaml', VALID + fleet, dir), {}).config.node.deviceId).toBe('gate-3');
    // the derived id follows node.name: the reload names the setting, not what was worked out from it
    expect(planReload(config, resolveConfig({ ...config, node: { ...config.node, name: 'other' } })).needRestart).toEqual(['node.name']);
    expect(() => resolveConfig(configSchema.parse({ upload: { collector: { url: 'http://127.0.0.1:1', key: 'hq' } } }))).toThrow(
      /upload\.collector\.key: needs keyring entry hq with a box and a sign key/,
    );
  });
});
