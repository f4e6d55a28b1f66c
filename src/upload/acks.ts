import { canonicalJson, fromB64, signDetached, toB64, verifyDetached } from '../crypto/index.js';
import type { BatchAnswer } from './batch.js';

/**
 * The collector's answer to a batch, signed with its Ed25519 key: it binds the device, the outbox epoch, the
 * batch id the device chose, and what was acked and refused. The same JSON goes back over HTTP and MQTT.
 */
export interface SignedAnswer extends BatchAnswer {
  v: 2;
  device: string;
  epoch: string;
  batch: string;
  sig: string;
}

const DOMAIN = 'outpost-upload-ack-v2\n';

const signedBytes = (a: Omit<SignedAnswer, 'sig' | 'v'>): Uint8Array =>
  new TextEncoder().encode(DOMAIN + canonicalJson({ device: a.device, epoch: a.epoch, batch: a.batch, acked: a.acked, refused: a.refused }));

export function signAnswer(fields: Omit<SignedAnswer, 'sig' | 'v'>, secretKey: Uint8Array): SignedAnswer {
  return { v: 2, ...fields, sig: toB64(signDetached(signedBytes(fields), secretKey)) };
}

export type AckRefusal = 'malformed' | 'bad-signature' | 'wrong-batch' | 'wrong-device' | 'wrong-epoch' | 'not-in-batch';
export const ACK_REFUSALS: readonly AckRefusal[] = ['malformed', 'bad-signature', 'wrong-batch', 'wrong-device', 'wrong-epoch', 'not-in-batch'];

/** What the uploader sent: an answer is only good for this. */
export interface SentBatch {
  id: string;
  device: string;
  epoch: string;
  seqs: ReadonlySet<number>;
}

export type AckVerdict = { ok: true; answer: BatchAnswer; strays: number } | { ok: false; reason: AckRefusal; detail: string };

const isSeqList = (v: unknown): v is number[] => Array.isArray(v) && v.length <= 100_000 && v.every((n) => Number.isSafeInteger(n));

/**
 * Checks an answer (parsed JSON from the network, hostile) against the batch it claims to answer: that it names
 * this batch, the collector's signature, then that it names this device and epoch. Acked seqs that were not in the
 * batch are left out and counted (`strays`); only the rest may leave the outbox.
 */
export function checkAnswer(raw: unknown, sent: SentBatch, collectorSign: Uint8Array): AckVerdict {
  const a = raw as Partial<SignedAnswer> | null;
  if (typeof a !== 'object' || a === null || a.v !== 2 || typeof a.sig !== 'string' || !isSeqList(a.acked) || !Array.isArray(a.refused))
    return { ok: false, reason: 'malformed', detail: 'not a signed batch answer' };
  if (typeof a.device !== 'string' || typeof a.epoch !== 'string' || typeof a.batch !== 'string')
    return { ok: false, reason: 'malformed', detail: 'the answer does not name its device, epoch and batch' };
  const sig = fromB64(a.sig);
  let bytes: Uint8Array;
  try {
    bytes = signedBytes(a as SignedAnswer);
  } catch {
    return { ok: false, reason: 'malformed', detail: 'the answer holds values no signature covers' };
  }
  // the cheap check first: an answer to no batch of ours costs no signature check
  if (a.batch !== sent.id) return { ok: false, reason: 'wrong-batch', detail: `answers batch ${a.batch.slice(0, 32)}, not ${sent.id}` };
  if (!sig || !verifyDetached(bytes, sig, collectorSign)) return { ok: false, reason: 'bad-signature', detail: "not signed by the collector's key" };
  // an answer that acks nothing (a refusal of the whole batch) may not know the device or epoch
  if (a.acked.length > 0 && a.device !== sent.device) return { ok: false, reason: 'wrong-device', detail: `acks for ${a.device.slice(0, 64)}` };
  if (a.acked.length > 0 && a.epoch !== sent.epoch) return { ok: false, reason: 'wrong-epoch', detail: `acks epoch ${a.epoch.slice(0, 32)}` };
  const acked = [...new Set(a.acked)].filter((s) => sent.seqs.has(s));
  const refused = a.refused.slice(0, 1000) as BatchAnswer['refused'];
  return { ok: true, answer: { acked, refused }, strays: new Set(a.acked).size - acked.length };
}
