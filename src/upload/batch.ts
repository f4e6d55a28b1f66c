import { SENDER_BYTES, sealedBy } from '../crypto/index.js';

/**
 * Items travel in batches: "OPB1", a u32 count, then each sealed envelope as a u32 length and its bytes (all
 * big-endian). The same bytes go over HTTP and MQTT; the collector opens each envelope on its own.
 */
const MAGIC = Buffer.from('OPB1', 'latin1');

export function encodeBatch(envelopes: readonly Buffer[]): Buffer {
  const head = Buffer.alloc(8);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(envelopes.length, 4);
  const parts: Buffer[] = [head];
  for (const e of envelopes) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(e.length, 0);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}

export class BatchError extends Error {}

/** The envelopes of a batch; throws BatchError when the framing does not hold (garbage, cut short). */
export function decodeBatch(body: Buffer, maxItems = 10_000): Buffer[] {
  if (body.length < 8 || !body.subarray(0, 4).equals(MAGIC)) throw new BatchError('not an Outpost batch (no OPB1 magic)');
  const count = body.readUInt32BE(4);
  if (count > maxItems) throw new BatchError(`a batch of ${count} items; at most ${maxItems}`);
  const out: Buffer[] = [];
  let at = 8;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) throw new BatchError(`the batch is cut short at item ${i + 1} of ${count}`);
    const len = body.readUInt32BE(at);
    if (at + 4 + len > body.length) throw new BatchError(`item ${i + 1} of ${count} is cut short`);
    out.push(body.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== body.length) throw new BatchError('bytes after the last item');
  return out;
}

/** Bytes of a batch `batchSender` needs: its head, the first item's length and the first envelope's head. */
export const BATCH_SENDER_BYTES = 12 + SENDER_BYTES;

/**
 * Who sealed a batch's first item, from its first bytes (to refuse a stranger's batch before reading the rest):
 * the sender's key, null for an empty batch, 'garbage' when it is no batch or its first item no envelope.
 */
export function batchSender(prefix: Buffer): string | null | 'garbage' {
  if (prefix.length < 8 || !prefix.subarray(0, 4).equals(MAGIC)) return 'garbage';
  if (prefix.readUInt32BE(4) === 0) return null;
  return prefix.length < 12 ? 'garbage' : (sealedBy(prefix.subarray(12)) ?? 'garbage');
}

/** What a collector answers for a batch (signed on the wire: acks.ts). */
export interface BatchAnswer {
  acked: number[];
  refused: { index: number; seq?: number; reason: string; message: string }[];
}

/** Content types of items. */
export const RESULT_TYPE = 'application/vnd.outpost.result+json';
export const DROPPED_TYPE = 'application/vnd.outpost.dropped+json';

/** The header sealed inside every item's envelope. */
export interface ItemHeader {
  device: string;
  /** 32 lowercase hex chars (16 random bytes) made once when the outbox is created: items are (device, epoch, seq) */
  epoch: string;
  seq: number;
  contentType: string;
  capturedAt: number;
  camera?: string;
  frameId?: string;
  /** the payload's parts in order: the result JSON, then the JPEG when the frame was included */
  parts?: { type: string; bytes: number }[];
}
