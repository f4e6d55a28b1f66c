import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, ConfigError, formatProblem, loadConfig } from '../src/config/index.js';
import { generateKeys, Keyring } from '../src/crypto/index.js';
import { filesOf, parseRegions, parseStageSpecs, PeerFileCache, PeerTable } from '../src/offload/index.js';
import { sameAnswer } from '../src/vision/index.js';
import { tempDir, writeTemp } from './helpers/paths.js';

const keys = generateKeys(join(tempDir(), 'keys'));
const BASE = `node: { name: a, stateDir: ./state }
keyring:
  - { name: b, sign: ${keys.sign}, box: ${keys.box}, roles: [peer] }
  - { name: watcher, sign: ${keys.sign}, roles: [operator] }
models:
  det: { file: builtin:ppocrv4-det }
  rec: { file: builtin:ppocrv4-rec }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db } }, { name: read, model: rec, input: crops, decoder: { type: ctc } }] }
`;

function problems(offload: string): string[] {
  try {
    loadConfig(writeTemp('outpost.yaml', `${BASE}offload:\n${offload}`), {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => formatProblem({ ...p, file: 'CFG' }));
  }
  return [];
}

describe('offload config', () => {
  it('accepts a run of a pipeline’s stages (the detector, the recogniser on crops, all) and a trusted peer', () => {
    expect(problems('  peers: [{ name: b, url: "http://10.0.0.2:8788" }]\n  stages: { text: [detect] }')).toEqual([]);
    expect(problems('  stages: { text: [detect, read] }')).toEqual([]);
    expect(problems('  stages: { text: [read] }')).toEqual([]); // the recogniser on crops
  });

  it('names the field and the fix for stages out of order, an unknown pipeline, and peers without keys to seal to', () => {
    expect(problems('  stages: { text: [read, detect] }')).toEqual([
      expect.stringMatching(/^CFG(:\d+:\d+)?: offload\.stages\.text: offloaded stages must be a run of the pipeline's stages, in order \(of detect, read\)$/),
    ]);
    expect(problems('  stages: { text: [detect, nothing] }')).toHaveLength(1);
    expect(problems('  stages: { txt: [detect] }')[0]).toMatch(/^CFG.*offload\.stages\.txt: .*pipeline.*txt.*text/);
    expect(problems('  peers: [{ name: nobody, url: "http://x:1" }]')[0]).toMatch(/offload\.peers\[0\]\.name: .*keyring entry.*nobody/);
    expect(problems('  peers: [{ name: watcher, url: "http://x:1" }]')[0]).toMatch(
      /offload\.peers\[0\]\.name: keyring entry watcher needs role peer and a box key/,
    );
    expect(problems('  peers: [{ name: b, url: "10.0.0.2:8788" }]')[0]).toMatch(/offload\.peers\[0\]\.url: http:\/\/host:8788/);
  });
});

const SHA = 'a'.repeat(64);
const detect = configSchema.parse({ pipelines: { t: { stages: [{ name: 'd', model: 'm', decoder: { type: 'db' } }] } } }).pipelines.t.stages[0];

describe('stages from the network', () => {
  it('are filled with defaults and name every file by sha256', () => {
    const [s] = parseStageSpecs([{ name: 'd', model: SHA, decoder: { type: 'ctc', dictionary: 'b'.repeat(64) } }]);
    expect(s.decoder).toMatchObject({ type: 'ctc', height: 48 });
    expect(filesOf(s)).toEqual([SHA, 'b'.repeat(64)]);
  });

  it('refuse a path where a file should be named (no peer reads a file it was told to), extra fields and too many stages', () => {
    expect(() => parseStageSpecs([{ ...detect, model: '/etc/passwd' }])).toThrow(/model a model is named by the sha256/);
    expect(() => parseStageSpecs([{ name: 'd', model: SHA, decoder: { type: 'ctc', dictionary: '/etc/shadow' } }])).toThrow(/sha256/);
    expect(() => parseStageSpecs([{ name: 'd', model: SHA, decoder: { type: 'yolo', labels: '../labels.txt' } }])).toThrow(/sha256/);
    expect(() => parseStageSpecs([{ ...detect, model: SHA, shell: 'rm -rf /' }])).toThrow(/shell/);
    expect(() => parseStageSpecs(Array(5).fill({ ...detect, model: SHA }))).toThrow(/stages:/);
    expect(() => parseStageSpecs('detect')).toThrow(/stages:/);
  });
});

describe('the peer table', () => {
  const cfg = configSchema.parse({
    keyring: [{ name: 'b', sign: keys.sign, box: keys.box, roles: ['peer'] }],
    offload: { breaker: { failures: 2, restSeconds: 30 } },
  }).offload!;
  const table = () =>
    new PeerTable(new Keyring(configSchema.parse({ keyring: [{ name: 'b', sign: keys.sign, box: keys.box, roles: ['peer'] }] }).keyring), cfg);

  it('takes only peers from the keyring with role peer, and gives a peer no frame before it passes a probe', () => {
    const t = table();
    expect(t.upsert('stranger', { url: 'http://x:1', source: 'announced' })).toBe(false);
    expect(t.upsert('b', { url: 'http://x:1', source: 'announced', models: { [SHA]: 40 } })).toBe(true);
    expect(t.candidates([SHA])).toEqual([]);
    expect(t.dueForProbe(1000).map((p) => p.name)).toEqual(['b']);
    t.probed(t.get('b')!, true, 1000, null);
    expect(t.candidates([SHA]).map((p) => p.name)).toEqual(['b']);
    expect(t.candidates(['c'.repeat(64)])).toEqual([]); // a model it does not have
  });

  it('opens the breaker after the configured failures in a row, rests the peer, then asks for a new probe', () => {
    const t = table();
    t.upsert('b', { url: 'http://x:1', source: 'static' });
    const b = t.get('b')!;
    t.probed(b, true, 0, null);
    t.begin(b);
    t.failed(b, 'timeout', 1000);
    expect(b.breaker).toBe('closed');
    t.begin(b);
    t.failed(b, 'timeout', 2000);
    expect(b).toMatchObject({ breaker: 'open', verified: false, lastError: 'timeout', inflight: 0 });
    expect(t.candidates([SHA])).toEqual([]);
    expect(t.dueForProbe(2000 + 29_000)).toEqual([]);
    expect(t.dueForProbe(2000 + 30_000).map((p) => p.name)).toEqual(['b']);
    t.probed(b, false, 40_000, 'answered nothing');
    expect(t.dueForProbe(60_000)).toEqual([]); // rested again
  });

  it('caps frames in flight per peer and estimates from round trip, queue and ms per frame', () => {
    const t = table();
    t.upsert('b', { url: 'http://x:1', source: 'announced', models: { [SHA]: 40 }, queue: 1 });
    const b = t.get('b')!;
    t.probed(b, true, 0, null);
    t.measured(b, 50, 40);
    expect(t.estimate(b, SHA)).toBe(10 + 40 + 40);
    t.begin(b);
    t.begin(b);
    expect(t.candidates([SHA])).toEqual([]); // maxInflightPerPeer 2
  });

  it('takes an announced peer out when its status goes offline; a static one stays', () => {
    const t = table();
    t.upsert('b', { url: 'http://x:1', source: 'announced' });
    t.offline('b');
    expect(t.get('b')!.online).toBe(false);
    t.upsert('b', { url: 'http://x:2', source: 'announced' });
    expect(t.get('b')).toMatchObject({ online: true, url: 'http://x:2' });
  });
});

describe("the regions a peer's request carries", () => {
  const word = { text: 'VALVE', score: 0.99, box: [0, 0, 40, 20] };
  const line = (words: unknown[]) => ({ lines: [{ text: 'VALVE 39', score: 0.99, box: [0, 0, 80, 20], words }] });

  it('takes text lines with their words, and bounds the words as it bounds the lines', () => {
    expect(parseRegions(line([word, { ...word, text: '39', box: [50, 0, 80, 20] }]))?.lines?.[0].words).toHaveLength(2);
    expect(() => parseRegions(line(Array.from({ length: 257 }, () => word)))).toThrow(/lines\.0\.words/);
    expect(() => parseRegions(line([{ ...word, box: [0, 0] }]))).toThrow(/lines\.0\.words\.0\.box/);
    expect(() => parseRegions(line([{ ...word, extra: 1 }]))).toThrow(/lines\.0\.words\.0/);
  });
});

describe('the known-answer check', () => {
  const box = (x: number) => [x, 10, x + 50, 30] as [number, number, number, number];
  const ours = {
    lines: [
      { text: 'OUTPOST 42', score: 0.99, box: box(10) },
      { text: 'GATE B', score: 0.97, box: box(100) },
    ],
  };

  it('takes the same reading from another precision: boxes moved a little, scores and a character differ', () => {
    expect(
      sameAnswer(ours, {
        lines: [
          { text: 'OUTPOST 42', score: 0.9, box: box(12) },
          { text: 'GATE 8', score: 0.8, box: box(101) },
        ],
      }),
    ).toBe(true);
  });

  it('counts a word break the peer lost against it', () => {
    const joined = (text: string) => ({ lines: [{ text, score: 0.9, box: box(10) }] });
    expect(sameAnswer(joined('VALVE 39'), joined('VALVE 39'))).toBe(true);
    // one character in eight is within a precision's tolerance, two are not
    expect(sameAnswer(joined('VALVE 39'), joined('VALVE39'))).toBe(true);
    expect(sameAnswer(joined('VALVE 39'), joined('VALVE3'))).toBe(false);
  });

  it('rests a peer that answers empty, elsewhere, something else, or far more', () => {
    expect(sameAnswer(ours, {})).toBe(false);
    expect(sameAnswer(ours, { lines: [] })).toBe(false);
    expect(sameAnswer(ours, { lines: ours.lines.map((l) => ({ ...l, box: box(300) })) })).toBe(false);
    expect(sameAnswer(ours, { lines: ours.lines.map((l) => ({ ...l, text: 'XXXXXX' })) })).toBe(false);
    expect(sameAnswer(ours, { lines: [...ours.lines, ...ours.lines, ...ours.lines] })).toBe(false);
    expect(sameAnswer({ classes: [{ classIndex: 1, label: 'cat', score: 0.9 }] }, { classes: [{ classIndex: 2, label: 'dog', score: 0.9 }] })).toBe(false);
  });
});

describe('files taken from peers', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('keeps a file only when its bytes hash to the name it came with, bounded by bytes, least recently used first', () => {
    const dir = tempDir();
    const cache = new PeerFileCache(dir, 3 << 20);
    const files = [0, 1, 2].map((i) => Buffer.alloc(1 << 20, i + 1));
    expect(() => cache.put(sha(files[0]), files[1])).toThrow(/the bytes hash to/);
    expect(() => cache.put('../../etc/passwd', files[0])).toThrow(/sha256/);
    expect(readdirSync(dir)).toEqual([]);
    for (const f of files) cache.put(sha(f), f);
    cache.path(sha(files[0])); // used: the second is now the oldest
    const fourth = Buffer.alloc(1 << 20, 9);
    cache.put(sha(fourth), fourth);
    expect(cache.evicted).toBe(1);
    expect(existsSync(join(dir, sha(files[1])))).toBe(false);
    expect(new PeerFileCache(dir, 3 << 20).shas().sort()).toEqual([files[0], files[2], fourth].map(sha).sort()); // the folder is the index
    expect(() => cache.put(sha(Buffer.alloc(4 << 20)), Buffer.alloc(4 << 20))).toThrow(/modelCacheBytes/);
  });
});
