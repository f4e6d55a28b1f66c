import { createHash } from 'node:crypto';
import { elementCount, type ModelProto, type TensorProto } from '../onnx/index.js';

/** Scalars and short vectors (scales, zero points) repeat across a quantized graph; one copy serves all. */
const SHARED_MAX_ELEMENTS = 64;

/**
 * Shrinks a quantized graph's bookkeeping, which is a tenth of an int8 file: identical small initializers
 * are stored once, internal tensors get short names (t0, t1 …) and the inserted Q/DQ nodes none. Graph
 * inputs/outputs and the names of the model's own nodes stay, so errors and profiles still name layers.
 * Graphs with subgraphs (If/Loop) are left alone: their bodies may name outer tensors implicitly.
 */
export function compactNames(model: ModelProto): void {
  const g = model.graph;
  if (!g?.node || g.node.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs?.length ?? 0) > 0))) return;
  const alias = duplicateInitializers(g.initializer ?? []);
  const kept = new Set([...(g.input ?? []), ...(g.output ?? [])].map((v) => v.name!));
  const names = new Map<string, string>();
  let next = 0;
  const short = (original: string): string => {
    const name = alias.get(original) ?? original;
    if (!name || kept.has(name)) return name;
    let n = names.get(name);
    if (n === undefined) {
      do n = `t${(next++).toString(36)}`;
      while (kept.has(n));
      names.set(name, n);
    }
    return n;
  };
  for (const node of g.node) {
    node.input = (node.input ?? []).map(short);
    node.output = (node.output ?? []).map(short);
    if (node.op_type === 'QuantizeLinear' || node.op_type === 'DequantizeLinear') delete node.name;
  }
  g.initializer = (g.initializer ?? []).filter((t) => !alias.has(t.name!)).map((t) => ({ ...t, name: short(t.name!) }));
  g.value_info = (g.value_info ?? []).map((v) => ({ ...v, name: short(v.name!) }));
}

/** Each duplicate small initializer's name → its first copy's name. */
function duplicateInitializers(inits: TensorProto[]): Map<string, string> {
  const alias = new Map<string, string>();
  const first = new Map<string, string>();
  for (const t of inits) {
    if (elementCount(t) > SHARED_MAX_ELEMENTS || t.data_location === 1) continue;
    const key = createHash('sha1')
      .update(
        JSON.stringify([
          t.data_type,
          t.dims?.map(Number),
          t.raw_data ? Buffer.from(t.raw_data).toString('base64') : null,
          t.float_data,
          t.int32_data,
          t.int64_data?.map(String),
        ]),
      )
      .digest('hex');
    const seen = first.get(key);
    if (seen) alias.set(t.name!, seen);
    else first.set(key, t.name!);
  }
  return alias;
}
