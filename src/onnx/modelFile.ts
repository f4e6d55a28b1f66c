import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OutpostError, errorMessage } from '../errors.js';
import { decodeModel, encodeModel, type ModelProto, type TensorProto } from './onnxModel.js';

/** Reads an .onnx file, with external tensor data loaded from beside it; clear errors for broken input. */
export function readModelFile(file: string): ModelProto {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new OutpostError('OUTPOST_E_MODEL', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new OutpostError('OUTPOST_E_MODEL', `${file} is not an ONNX model (${errorMessage(err)}); is it truncated?`);
  }
  if (!model.graph || !model.opset_import?.length) throw new OutpostError('OUTPOST_E_MODEL', `${file} is not an ONNX model (no graph or no opset)`);
  for (const t of model.graph.initializer ?? []) if (t.data_location === 1) loadExternal(t, dirname(file));
  return model;
}

function loadExternal(t: TensorProto, dir: string): void {
  const info = Object.fromEntries((t.external_data ?? []).map((e) => [e.key, e.value]));
  const path = join(dir, info.location ?? '');
  if (!info.location || !existsSync(path))
    throw new OutpostError(
      'OUTPOST_E_MODEL',
      `tensor ${t.name} keeps its data in ${info.location ?? '(no location)'}, which is missing next to the model; copy it there`,
    );
  const all = readFileSync(path);
  const offset = Number(info.offset ?? 0);
  const length = info.length !== undefined ? Number(info.length) : all.length - offset;
  t.raw_data = all.subarray(offset, offset + length);
  t.data_location = 0;
  delete t.external_data;
}

/** Writes to a temporary name, then renames: a crash never leaves half a model under the real name. */
export function writeModelFile(file: string, model: ModelProto): number {
  const bytes = encodeModel(model);
  const tmp = `${file}.partial-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return bytes.length;
}
