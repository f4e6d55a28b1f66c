import { missing } from './helpers/optional.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, decodeTensor, encodeModel, ortTypeName, tensorValues, dimsOf, type ModelProto } from '../src/onnx/index.js';
import { LocalSession, type TensorData, type TensorMap } from '../src/runtime/index.js';

const DATA = '/usr/share/libonnx-testdata/data';
const SUITES = ['simple', 'pytorch-converted', 'pytorch-operator', 'node'];
const have = existsSync(DATA);

function toTensorData(pb: Buffer): TensorData | null {
  const t = decodeTensor(pb);
  const type = ortTypeName(t.data_type ?? 0);
  if (!type) return null;
  return { type: type as TensorData['type'], dims: dimsOf(t), data: tensorValues(t) as TensorData['data'] };
}

function sameBits(a: TensorData, b: TensorData): boolean {
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return a.type === b.type && JSON.stringify(a.dims) === JSON.stringify(b.dims) && x.length === y.length && x.every((v, i) => v === y[i]);
}

const spec = { provider: 'cpu' as const, threads: 1, deviceId: 0, cacheDir: null };

/** Reads, writes, and runs both through ORT: outputs must match bit for bit. Null when ORT cannot run the original. */
async function roundTrip(dir: string): Promise<'same' | 'skipped' | string> {
  const original = readFileSync(join(dir, 'model.onnx'));
  const model = decodeModel(original);
  const rewritten = encodeModel(model);
  // the rewrite is stable: decoding what we wrote gives the same structure
  expect(encodeModel(decodeModel(rewritten)).equals(rewritten)).toBe(true);
  const inputsDir = join(dir, 'test_data_set_0');
  const graphInputs = (model.graph?.input ?? []).filter((i) => !(model.graph?.initializer ?? []).some((t) => t.name === i.name));
  if (!existsSync(inputsDir) || graphInputs.some((i) => !i.type?.tensor_type)) return 'skipped';
  const feeds: TensorMap = {};
  for (const [k, input] of graphInputs.entries()) {
    const file = join(inputsDir, `input_${k}.pb`);
    if (!existsSync(file)) return 'skipped';
    const t = toTensorData(readFileSync(file));
    if (!t) return 'skipped';
    feeds[input.name!] = t;
  }
  let a: TensorMap;
  try {
    const s = await LocalSession.create(original, spec);
    a = await s.run(structuredClone(feeds));
    await s.release();
  } catch {
    return 'skipped'; // ORT itself cannot run this conformance model
  }
  const s2 = await LocalSession.create(rewritten, spec);
  const b = await s2.run(structuredClone(feeds));
  await s2.release();
  for (const name of Object.keys(a)) if (!sameBits(a[name], b[name])) return `output ${name} differs`;
  return 'same';
}

function dirsOf(suite: string): string[] {
  const root = join(DATA, suite);
  return existsSync(root)
    ? readdirSync(root)
        .sort()
        .map((d) => join(root, d))
        .filter((d) => existsSync(join(d, 'model.onnx')))
    : [];
}

describe.skipIf(missing('ONNX conformance data (/usr/share/libonnx-testdata)', have, 'apt-get install libonnx-testdata (.ci/run does)'))(
  "ONNX read → write round trip on ONNX's conformance models (libonnx-testdata)",
  () => {
    for (const suite of SUITES) {
      it(`${suite}: every model ORT runs gives identical outputs after the rewrite`, async () => {
        const counts = { same: 0, skipped: 0 };
        const failures: string[] = [];
        for (const dir of dirsOf(suite)) {
          const r = await roundTrip(dir);
          if (r === 'same' || r === 'skipped') counts[r]++;
          else failures.push(`${dir}: ${r}`);
        }
        console.info(`${suite}: ${counts.same} identical, ${counts.skipped} not runnable by ORT (or non-tensor inputs)`);
        expect(failures).toEqual([]);
        expect(counts.same).toBeGreaterThan(0);
      });
    }

    it('keeps fields it does not know, and metadata', () => {
      const model: ModelProto = decodeModel(readFileSync(join(DATA, 'node/test_add/model.onnx')));
      model.metadata_props = [{ key: 'outpost', value: 'kept' }];
      // field 99 (varint 7), as a future ONNX might add to ModelProto
      model.$unknown = [...(model.$unknown ?? []), Uint8Array.from([0x98, 0x06, 0x07])];
      const again = decodeModel(encodeModel(model));
      expect(again.metadata_props).toEqual([{ key: 'outpost', value: 'kept' }]);
      expect(again.$unknown?.map((u) => [...u])).toContainEqual([0x98, 0x06, 0x07]);
    });
  },
);
