import type nacl from 'tweetnacl';
import { signDetached, verifyDetached } from './ed25519.js';
import { canonicalJson, fromB64, toB64 } from './encoding.js';

/** What a device signs when it answers a command: who answers, to which command (its nonce), and the outcome. */
export interface AnswerFields {
  device: string;
  action: string;
  /** the nonce of the command answered: an answer cannot be moved to another command */
  request: string;
  status: 'ok' | 'refused' | 'error';
  data?: unknown;
  error?: { reason: string; message: string };
  answeredAt: number;
}

export interface SignedAnswer extends AnswerFields {
  v: 1;
  /** the device's Ed25519 public key, base64 */
  signer: string;
  sig: string;
}

const DOMAIN = 'outpost-command-answer-v1\n';

function answerBytes(a: AnswerFields, signer: string): Uint8Array {
  const { device, action, request, status, data, error, answeredAt } = a;
  return new TextEncoder().encode(DOMAIN + canonicalJson({ device, action, request, status, data, error, answeredAt, signer }));
}

/** Signs an answer with the device's key. `data` goes through JSON first, so what is signed is what a reader parses. */
export function signAnswer(fields: AnswerFields, keys: nacl.SignKeyPair): SignedAnswer {
  const plain = JSON.parse(JSON.stringify(fields)) as AnswerFields;
  const signer = toB64(keys.publicKey);
  return { v: 1, ...plain, signer, sig: toB64(signDetached(answerBytes(plain, signer), keys.secretKey)) };
}

export interface AnswerExpectation {
  device: string;
  action: string;
  request: string;
  /** the device's Ed25519 public key, from a file the operator trusts */
  deviceKey: Uint8Array;
}

/** The answer, when it is signed by the expected device's key for this very command; else why not. */
export function checkAnswer(body: unknown, want: AnswerExpectation): { ok: true; answer: SignedAnswer } | { ok: false; why: string } {
  if (typeof body !== 'object' || body === null) return { ok: false, why: 'not an object' };
  const a = body as Partial<SignedAnswer>;
  if (a.v !== 1 || typeof a.sig !== 'string' || typeof a.signer !== 'string') return { ok: false, why: 'unsigned' };
  if (a.signer !== toB64(want.deviceKey)) return { ok: false, why: `not signed by ${want.device}'s key` };
  if (a.device !== want.device || a.action !== want.action || a.request !== want.request) return { ok: false, why: 'an answer to another command' };
  if (!['ok', 'refused', 'error'].includes(String(a.status)) || typeof a.answeredAt !== 'number') return { ok: false, why: 'malformed' };
  const sig = fromB64(a.sig);
  let valid = false;
  try {
    valid = sig !== null && verifyDetached(answerBytes(a as SignedAnswer, a.signer), sig, want.deviceKey);
  } catch {
    valid = false; // data that canonical JSON cannot hold
  }
  return valid ? { ok: true, answer: a as SignedAnswer } : { ok: false, why: 'bad signature' };
}
