import type { TensorMap, TensorValues } from '../../runtime/index.js';

type StoredTensor = { type: string; dims: number[]; data: string };

/** The recorded runs, with tensor bytes as base64 (a few MB for one frame of the demo pipeline). */
export function encodeFeeds(runs: [string, TensorMap][]): string {
  const tensor = (t: TensorMap[string]): StoredTensor => ({
    type: t.type,
    dims: t.dims,
    data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64'),
  });
  return JSON.stringify(runs.map(([key, feeds]) => [key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tensor(t)]))]));
}

export function decodeFeeds(text: string): [string, TensorMap][] {
  const runs = JSON.parse(text) as [string, Record<string, StoredTensor>][];
  const tensor = (t: StoredTensor) => {
    if (t.type !== 'float32') throw new Error(`the memory probe replays float32 feeds only, not ${t.type}`);
    const bytes = Buffer.from(t.data, 'base64');
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as TensorValues;
    return { type: t.type as TensorMap[string]['type'], dims: t.dims, data };
  };
  return runs.map(([key, feeds]) => [key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tensor(t)]))]);
}
