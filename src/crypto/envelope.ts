import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { toB64 } from './encoding.js';
import type { Refusal } from '../refusals.js';

/**
 * A sealed envelope, version 1 (snapshots, offload frames: live exchanges; upload items are version 2, sealedItem.ts): tweetnacl `box` from the sender's X25519 key to the
 * recipient's, so only the recipient can open it and it proves who sealed it.
 *
 *   offset  size  field
 *   0       4     magic "OPSE"
 *   4       1     version (1)
 *   5       32    sender's X25519 public key
 *   37      24    nonce (random)
 *   61      …     box(plaintext, nonce, recipient public, sender secret): XSalsa20-Poly1305, 16-byte tag first
 *
 *   plaintext: u32 big-endian length of the header, the header (UTF-8 JSON, always with `v: 1`), the payload.
 *
 * The header names what is inside (device, seq, content type, captured-at …); it is sealed too, so nothing but
 * the sender's key and the sizes is visible on the way.
 */
export const MAGIC = Buffer.from('OPSE', 'latin1');
export const VERSION = 1;
const HEAD = 4 + 1 + 32 + 24;

export type EnvelopeFailure = Extract<Refusal, 'garbage' | 'truncated' | 'version' | 'cannot-open' | 'bad-header' | 'bad-signature'>;

export class EnvelopeError extends Error {
  constructor(
    readonly reason: EnvelopeFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface Opened<H> {
  /** base64 X25519 key of whoever sealed it (look it up in the keyring before trusting anything inside) */
  sender: string;
  header: H;
  payload: Buffer;
}

/** Bytes of an envelope's clear part that name its sender: magic, version, key. */
export const SENDER_BYTES = 37;

/**
 * The key an envelope says sealed it (base64), read from its first 37 bytes without opening it, to refuse
 * strangers before any work: the X25519 key in version 1, the Ed25519 key in version 2 (upload items). Null when
 * it is no envelope of a known version.
 */
export function sealedBy(bytes: Uint8Array): string | null {
  const ours = bytes.length >= SENDER_BYTES && Buffer.from(bytes.buffer, bytes.byteOffset, 4).equals(MAGIC) && (bytes[4] === 1 || bytes[4] === 2);
  return ours ? toB64(bytes.subarray(5, SENDER_BYTES)) : null;
}

/**
 * Seals and opens envelopes for one key pair. The X25519 agreement with each peer (`box.before`, ~1 ms) is done
 * once and cached (bounded): a board seals thousands of items to the same collector.
 */

export class SealedEnvelope {
  private readonly shared = new Map<string, Uint8Array>();

  constructor(
    private readonly keys: nacl.BoxKeyPair,
    private readonly maxPeers = 256,
  ) {}

  /** `nonce` is for test vectors only: a nonce must never be used twice with one key pair. */
  seal(header: Record<string, unknown>, payload: Uint8Array, recipient: Uint8Array, nonce: Uint8Array = randomBytes(nacl.box.nonceLength)): Buffer {
    const head = Buffer.from(JSON.stringify({ ...header, v: VERSION }), 'utf8');
    const plain = Buffer.alloc(4 + head.length + payload.length);
    plain.writeUInt32BE(head.length, 0);
    head.copy(plain, 4);
    plain.set(payload, 4 + head.length);
    const sealed = nacl.box.after(plain, nonce, this.key(recipient));
    return Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(this.keys.publicKey), nonce, sealed]);
  }

  /** `peer`: the other side's key when it is not the sender's (a sender opening what it sealed itself). */
  open<H = Record<string, unknown>>(bytes: Uint8Array, peer?: Uint8Array): Opened<H> {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (b.length < 5 || !b.subarray(0, 4).equals(MAGIC)) throw new EnvelopeError('garbage', 'not a sealed envelope (no OPSE magic)');
    if (b[4] !== VERSION) throw new EnvelopeError('version', `envelope version ${b[4]}; this build opens version ${VERSION}`);
    if (b.length < HEAD + nacl.box.overheadLength + 4) throw new EnvelopeError('truncated', `envelope of ${b.length} bytes is cut short`);
    const sender = b.subarray(5, 37);
    const plain = nacl.box.open.after(b.subarray(HEAD), b.subarray(37, HEAD), this.key(peer ?? sender));
    if (!plain) throw new EnvelopeError('cannot-open', 'the envelope does not open with this key (tampered, truncated, or sealed for someone else)');
    const p = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    const len = p.readUInt32BE(0);
    let header: H & { v?: number };
    try {
      if (4 + len > p.length) throw new Error('header longer than the envelope');
      header = JSON.parse(p.subarray(4, 4 + len).toString('utf8'));
    } catch (err) {
      throw new EnvelopeError('bad-header', `the sealed header does not read (${(err as Error).message})`);
    }
    if (header.v !== VERSION) throw new EnvelopeError('bad-header', 'the sealed header has no matching version');
    return { sender: toB64(sender), header, payload: p.subarray(4 + len) };
  }

  private key(peer: Uint8Array): Uint8Array {
    const id = toB64(peer);
    let k = this.shared.get(id);
    if (!k) {
      if (this.shared.size >= this.maxPeers) this.shared.delete(this.shared.keys().next().value!);
      k = nacl.box.before(peer, this.keys.secretKey);
      this.shared.set(id, k);
    }
    return k;
  }
}
