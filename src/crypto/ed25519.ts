import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { toB64 } from './encoding.js';

/**
 * Ed25519 through node:crypto (OpenSSL): verify ~0.1 ms against tweetnacl's ~8.8 ms (REFERENCE §9), so a stranger
 * naming an operator cannot buy 8 ms of daemon CPU per message. Keys stay in tweetnacl's formats (32-byte public,
 * 64-byte secret = seed || public) and are wrapped as DER once, cached.
 */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;

const MAX_CACHED = 1024;
const publicCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = toB64(publicKey);
  let k = publicCache.get(id);
  if (!k) {
    // bounded: a flood of random claimed signers must not grow it
    if (publicCache.size >= MAX_CACHED) publicCache.delete(publicCache.keys().next().value!);
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    publicCache.set(id, k);
  }
  return k;
}

/** A detached signature with a tweetnacl 64-byte secret key (its first 32 bytes are the seed). */
export function signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, privateKeyObject(secretKey)));
}

/** This process's own signing keys (a handful), wrapped once: a board signs every item it uploads. */
const privateCache = new Map<string, KeyObject>();
function privateKeyObject(secretKey: Uint8Array): KeyObject {
  const id = toB64(secretKey);
  let k = privateCache.get(id);
  if (!k) {
    if (privateCache.size >= 16) privateCache.delete(privateCache.keys().next().value!);
    k = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    privateCache.set(id, k);
  }
  return k;
}

/** True only for a well-formed 64-byte signature by the 32-byte public key over `message`. Never throws. */
export function verifyDetached(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return nodeVerify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false; // a key OpenSSL will not load (not on the curve) signs nothing
  }
}
