/**
 * A protobuf wire-format codec driven by a small schema table. Unlike generated codecs it keeps every field
 * it does not know as raw bytes (`$unknown`) and writes them back, so a model read and written by Outpost
 * loses nothing a newer ONNX version added.
 */

export type FieldType = 'int32' | 'int64' | 'uint64' | 'float' | 'double' | 'string' | 'bytes' | 'message';

export interface FieldDef {
  name: string;
  type: FieldType;
  repeated?: boolean;
  message?: string;
}

export type MessageSchema = Record<string, Record<number, FieldDef>>;

/** A decoded message: known fields by name, unknown ones as raw encoded fields. */
export type Decoded = Record<string, unknown> & { $unknown?: Uint8Array[] };

const PACKABLE = new Set<FieldType>(['int32', 'int64', 'uint64', 'float', 'double']);

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** A varint as an unsigned 64-bit bigint. */
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint longer than 64 bits');
    }
  }

  /** Fast path for tags and lengths (always < 2^31 in valid ONNX files). */
  smallVarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error('length or tag too large');
  }

  bytes(): Uint8Array {
    const len = this.smallVarint();
    if (this.pos + len > this.buf.length) throw new Error(`truncated field: ${len} bytes announced, ${this.buf.length - this.pos} left`);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  fixed32(): number {
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  fixed64(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  skipField(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.buf.length) throw new Error('truncated field');
  }
}

function intValue(v: bigint, type: FieldType): number | bigint {
  const n = type === 'uint64' ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function readScalar(r: Reader, f: FieldDef, wireType: number, schema: MessageSchema): unknown {
  switch (f.type) {
    case 'float':
      return r.fixed32();
    case 'double':
      return r.fixed64();
    case 'string':
      return new TextDecoder().decode(r.bytes());
    case 'bytes':
      return r.bytes();
    case 'message':
      return decodeMessage(r.bytes(), f.message!, schema);
    default:
      if (wireType !== 0) throw new Error(`field ${f.name}: wire type ${wireType} for an integer`);
      return intValue(r.varint(), f.type);
  }
}

const WIRE_TYPE: Record<FieldType, number> = { int32: 0, int64: 0, uint64: 0, float: 5, double: 1, string: 2, bytes: 2, message: 2 };

export function decodeMessage(buf: Uint8Array, type: string, schema: MessageSchema): Decoded {
  const defs = schema[type];
  const out: Decoded = {};
  const r = new Reader(buf);
  while (r.pos < buf.length) {
    const start = r.pos;
    const tag = r.smallVarint();
    const no = Math.floor(tag / 8);
    const wireType = tag & 7;
    const f = defs[no];
    const packed = f?.repeated && PACKABLE.has(f.type) && wireType === 2;
    if (!f || (!packed && WIRE_TYPE[f.type] !== wireType)) {
      r.skipField(wireType);
      (out.$unknown ??= []).push(buf.subarray(start, r.pos));
      continue;
    }
    if (packed) {
      const inner = new Reader(r.bytes());
      const list = (out[f.name] ??= []) as unknown[];
      while (inner.pos < inner.buf.length) list.push(readScalar(inner, f, WIRE_TYPE[f.type], schema));
    } else if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(readScalar(r, f, wireType, schema));
    else out[f.name] = readScalar(r, f, wireType, schema);
  }
  return out;
}

/** Collects encoded chunks; big byte fields (tensor data) are referenced, not copied, until the end. */
class Writer {
  parts: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flush(): void {
    if (this.scratch.length === 0) return;
    const b = Uint8Array.from(this.scratch);
    this.parts.push(b);
    this.length += b.length;
    this.scratch = [];
  }

  varint(v: number | bigint): void {
    let n = typeof v === 'bigint' ? BigInt.asUintN(64, v) : v >= 0 && v < 2 ** 31 ? v : BigInt.asUintN(64, BigInt(v));
    if (typeof n === 'number') {
      while (n > 0x7f) {
        this.scratch.push((n & 0x7f) | 0x80);
        n >>>= 7;
      }
      this.scratch.push(n);
      return;
    }
    while (n > 0x7fn) {
      this.scratch.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.scratch.push(Number(n));
  }

  tag(no: number, wireType: number): void {
    this.varint(no * 8 + wireType);
  }

  raw(b: Uint8Array): void {
    this.flush();
    this.parts.push(b);
    this.length += b.length;
  }

  float(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
  }

  double(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.scratch.push(...b);
  }

  finish(): { parts: Uint8Array[]; length: number } {
    this.flush();
    return { parts: this.parts, length: this.length };
  }
}

function writeScalar(w: Writer, f: FieldDef, v: unknown, schema: MessageSchema): void {
  switch (f.type) {
    case 'float':
      return w.float(v as number);
    case 'double':
      return w.double(v as number);
    case 'string': {
      const b = new TextEncoder().encode(v as string);
      w.varint(b.length);
      return w.raw(b);
    }
    case 'bytes':
      w.varint((v as Uint8Array).length);
      return w.raw(v as Uint8Array);
    case 'message': {
      const inner = encodeParts(v as Decoded, f.message!, schema);
      w.varint(inner.length);
      for (const p of inner.parts) w.raw(p);
      return;
    }
    default:
      return w.varint(v as number | bigint);
  }
}

function encodeParts(msg: Decoded, type: string, schema: MessageSchema): { parts: Uint8Array[]; length: number } {
  const w = new Writer();
  const defs = schema[type];
  for (const [noText, f] of Object.entries(defs)) {
    const no = Number(noText);
    const v = msg[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      const list = v as unknown[];
      if (list.length === 0) continue;
      if (PACKABLE.has(f.type)) {
        const inner = new Writer();
        for (const x of list) writeScalar(inner, f, x, schema);
        const packed = inner.finish();
        w.tag(no, 2);
        w.varint(packed.length);
        for (const p of packed.parts) w.raw(p);
      } else {
        for (const x of list) {
          w.tag(no, WIRE_TYPE[f.type]);
          writeScalar(w, f, x, schema);
        }
      }
    } else {
      w.tag(no, WIRE_TYPE[f.type]);
      writeScalar(w, f, v, schema);
    }
  }
  for (const u of msg.$unknown ?? []) w.raw(u);
  return w.finish();
}

export function encodeMessage(msg: Decoded, type: string, schema: MessageSchema): Buffer {
  const { parts, length } = encodeParts(msg, type, schema);
  return Buffer.concat(parts, length);
}
