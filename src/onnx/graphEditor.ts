import type { AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto } from './onnxModel.js';

/** AttributeProto.AttributeType */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

export function floatAttr(node: NodeProto, name: string, fallback: number): number {
  return attr(node, name)?.f ?? fallback;
}

export const mkInt = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
export const mkInts = (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints });

/**
 * Lookups over one graph for rewrite passes: who produces and who consumes each tensor, which tensors are
 * constants (initializers, or `Constant` nodes as paddle exports them), and fresh unique names.
 */
export class GraphEditor {
  readonly graph: GraphProto;
  private names = new Set<string>();
  private counter = 0;

  constructor(readonly model: ModelProto) {
    this.graph = model.graph!;
    this.graph.node ??= [];
    this.graph.initializer ??= [];
    for (const n of this.graph.node) for (const o of [...(n.output ?? []), ...(n.input ?? []), n.name ?? '']) this.names.add(o);
    for (const t of this.graph.initializer) this.names.add(t.name ?? '');
    for (const v of [...(this.graph.input ?? []), ...(this.graph.output ?? [])]) this.names.add(v.name ?? '');
  }

  get nodes(): NodeProto[] {
    return this.graph.node!;
  }

  /** A name nobody uses yet, based on `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  opset(domain = ''): number {
    const o = this.model.opset_import?.find((x) => (x.domain ?? '') === domain || (domain === '' && x.domain === 'ai.onnx'));
    return o ? Number(o.version) : 0;
  }

  initializer(name: string): TensorProto | undefined {
    return this.graph.initializer!.find((t) => t.name === name);
  }

  /** A constant tensor by name: an initializer, or the value of a Constant node. */
  constant(name: string): TensorProto | undefined {
    const init = this.initializer(name);
    if (init) return init;
    const producer = this.producer(name);
    if (producer?.op_type === 'Constant') return attr(producer, 'value')?.t;
    return undefined;
  }

  producer(tensor: string): NodeProto | undefined {
    return this.nodes.find((n) => n.output?.includes(tensor));
  }

  consumers(tensor: string): NodeProto[] {
    return this.nodes.filter((n) => n.input?.includes(tensor));
  }

  isGraphOutput(tensor: string): boolean {
    return (this.graph.output ?? []).some((o) => o.name === tensor);
  }

  isGraphInput(tensor: string): boolean {
    return (this.graph.input ?? []).some((o) => o.name === tensor) && !this.initializer(tensor);
  }

  addInitializer(t: TensorProto): string {
    this.names.add(t.name!);
    this.graph.initializer!.push(t);
    return t.name!;
  }

  /** Inserts nodes right before `anchor` (keeps the topological order valid for their consumers). */
  insertBefore(anchor: NodeProto, nodes: NodeProto[]): void {
    const i = this.nodes.indexOf(anchor);
    this.nodes.splice(i < 0 ? this.nodes.length : i, 0, ...nodes);
  }

  replace(node: NodeProto, nodes: NodeProto[]): void {
    const i = this.nodes.indexOf(node);
    this.nodes.splice(i, 1, ...nodes);
  }

  remove(node: NodeProto): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
  }

  /** Drops initializers and Constant nodes nothing reads any more (the float weights a rewrite replaced). */
  pruneUnused(): void {
    const used = new Set(this.nodes.flatMap((n) => n.input ?? []));
    for (const o of this.graph.output ?? []) used.add(o.name ?? '');
    for (const n of this.nodes) for (const a of n.attribute ?? []) if (a.g) for (const sub of a.g.node ?? []) for (const i of sub.input ?? []) used.add(i);
    const removed = new Set(this.graph.initializer!.filter((t) => !used.has(t.name ?? '')).map((t) => t.name));
    this.graph.initializer = this.graph.initializer!.filter((t) => !removed.has(t.name));
    this.graph.node = this.nodes.filter((n) => n.op_type !== 'Constant' || (n.output ?? []).some((o) => used.has(o)));
    // old IR versions also list initializers as graph inputs
    if (this.graph.input) this.graph.input = this.graph.input.filter((i) => !removed.has(i.name));
  }

  /** Sets (or adds) an opset import. */
  requireOpset(domain: string, version: number): void {
    this.model.opset_import ??= [];
    const o = this.model.opset_import.find((x) => (x.domain ?? '') === domain);
    if (!o) this.model.opset_import.push({ domain, version });
    else if (Number(o.version) < version) o.version = version;
  }
}
