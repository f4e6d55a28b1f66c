import { DROPPED_TYPE, type ItemHeader } from './batch.js';
import type { Refusal } from '../refusals.js';
import { DEVICE_ID } from '../vocabulary.js';

/** Why the store refuses an item the device sealed correctly: the collector answers it as refused with this reason. */
export type StoreRefusalReason = Extract<Refusal, 'bad-seq' | 'bad-drop-range' | 'quota' | 'bad-header'>;

export class StoreRefusal extends Error {
  constructor(
    readonly reason: StoreRefusalReason,
    message: string,
  ) {
    super(message);
    this.name = 'StoreRefusal';
  }
}

/** An item whose payload is not what its header says (not JSON, parts that do not add up). */
export class PayloadError extends Error {}

export interface StoreLimits {
  /** how far past the highest seq stored for a (device, epoch) a new seq may be */
  seqWindow: number;
  /** bytes a device may hold in OUT (items, frames, drop notices and conflicts) */
  quotaBytes: number;
  /** items a device may hold in OUT */
  quotaItems: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = { seqWindow: 1_000_000, quotaBytes: 50 * 2 ** 30, quotaItems: 10_000_000 };

/** Ranges a drop notice may carry: the outbox reports at most 1,000 at a time. */
export const MAX_DROP_RANGES = 10_000;

const EPOCH = /^[0-9a-f]{32}$/;
const REASON = /^[a-z][a-z0-9-]{0,31}$/;

/** The device id and epoch name folders: anything else could climb out of OUT or collide. */
export function checkNames(device: string, epoch: unknown): asserts epoch is string {
  if (!DEVICE_ID.test(device)) throw new StoreRefusal('bad-header', `device id ${JSON.stringify(device.slice(0, 70))} is not letters, digits, "-" and "_"`);
  if (typeof epoch !== 'string' || !EPOCH.test(epoch))
    throw new StoreRefusal('bad-header', `${device}: the header's epoch is not 32 lowercase hex characters (update the device: outbox epochs)`);
}

export const isEpochName = (name: string) => EPOCH.test(name);

/** An integer ≥ 1, at most `highest + window`: an absurd seq would make the device's record unaccountable. */
export function checkSeq(device: string, seq: unknown, highest: number, window: number): asserts seq is number {
  const bound = highest + window;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || seq > bound)
    throw new StoreRefusal(
      'bad-seq',
      `${device}: seq ${String(seq).slice(0, 30)} is not an integer from 1 to ${bound} (highest stored ${highest} + window ${window})`,
    );
}

/** A drop notice's ranges: integers, from ≤ to, all before the notice's own seq (drops are told after they happen). */
export function parseDropNotice(device: string, seq: number, payload: Buffer): { ranges: [number, number, string][] } {
  let notice: unknown;
  try {
    notice = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new StoreRefusal('bad-drop-range', `${device} seq ${seq}: the drop notice is not JSON`);
  }
  const ranges = (notice as { ranges?: unknown } | null)?.ranges;
  if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > MAX_DROP_RANGES)
    throw new StoreRefusal('bad-drop-range', `${device} seq ${seq}: a drop notice holds 1 to ${MAX_DROP_RANGES} ranges`);
  for (const r of ranges) {
    const ok =
      Array.isArray(r) &&
      r.length === 3 &&
      Number.isSafeInteger(r[0]) &&
      Number.isSafeInteger(r[1]) &&
      r[0] >= 1 &&
      r[0] <= r[1] &&
      r[1] < seq &&
      typeof r[2] === 'string' &&
      REASON.test(r[2]);
    if (!ok) throw new StoreRefusal('bad-drop-range', `${device} seq ${seq}: drop range ${JSON.stringify(r).slice(0, 80)} is not [from ≤ to < ${seq}, reason]`);
  }
  return { ranges: ranges as [number, number, string][] };
}

/** The files one item becomes, in write order: the JPEG (if any), then the JSON whose presence says the item is whole. */
export interface ItemFiles {
  jpeg: Buffer | null;
  marker: { name: string; bytes: Buffer };
}

export function itemFiles(device: string, h: ItemHeader, payload: Buffer): ItemFiles {
  const c = itemContent(device, h, payload);
  if (c.ranges) return { jpeg: null, marker: { name: `${h.seq}.dropped.json`, bytes: json({ ranges: c.ranges, header: h }) } };
  return { jpeg: c.jpeg, marker: { name: `${h.seq}.json`, bytes: json({ header: h, result: c.result }) } };
}

/** What an item holds, checked: a drop notice's ranges, or a result (parsed JSON) and its JPEG. */
export function itemContent(
  device: string,
  h: ItemHeader,
  payload: Buffer,
): { result: unknown; jpeg: Buffer | null; ranges: [number, number, string][] | null } {
  if (h.contentType === DROPPED_TYPE) {
    const { ranges } = parseDropNotice(device, h.seq, payload);
    return { result: { ranges }, jpeg: null, ranges };
  }
  return { ...splitParts(h, payload), ranges: null };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2));

/** The result JSON and the JPEG out of a payload, checked against the header's parts before anything is written. */
function splitParts(h: ItemHeader, payload: Buffer): { result: unknown; jpeg: Buffer | null } {
  const parts: unknown = h.parts ?? [{ type: 'application/json', bytes: payload.length }];
  if (!Array.isArray(parts) || parts.length > 2) throw new PayloadError("the header's parts are not a list of at most 2");
  let at = 0;
  let text: Buffer | null = null;
  let jpeg: Buffer | null = null;
  for (const p of parts as { type?: unknown; bytes?: unknown }[]) {
    if (!Number.isSafeInteger(p?.bytes) || (p.bytes as number) < 0) throw new PayloadError('a part has no byte count');
    const bytes = payload.subarray(at, at + (p.bytes as number));
    at += p.bytes as number;
    if (p.type === 'image/jpeg' && !jpeg) jpeg = bytes;
    else if (p.type === 'application/json' && !text) text = bytes;
    else throw new PayloadError(`a part of type ${JSON.stringify(p.type)} (one JSON and at most one JPEG)`);
  }
  if (at !== payload.length) throw new PayloadError(`the parts say ${at} bytes, the payload has ${payload.length}`);
  let result: unknown = null;
  if (text) {
    try {
      result = JSON.parse(text.toString('utf8'));
    } catch (err) {
      throw new PayloadError(`the result is not JSON (${(err as Error).message})`);
    }
  }
  return { result, jpeg };
}
