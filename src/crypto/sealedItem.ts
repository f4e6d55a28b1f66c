import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { signDetached, verifyDetached } from './ed25519.js';
import { EnvelopeError, MAGIC } from './envelope.js';
import { toB64 } from './encoding.js';

/**
 * Envelope version 2, for upload items: only the collector can open it, and the device's signature inside says
 * who made it. A fresh X25519 key pair per item (sealed-box style) means the device keeps nothing that opens its
 * own outbox: a stolen SD card (secret.json included) reads none of it.
 *
 *   offset  size  field
 *   0       4     magic "OPSE"
 *   4       1     version (2)
 *   5       32    sender's Ed25519 public key (in the clear: a collector refuses a stranger by a map lookup)
 *   37      32    ephemeral X25519 public key (one per item)
 *   69      24    nonce (random)
 *   93      …     XSalsa20-Poly1305 (NaCl secretbox, 16-byte tag first) of the plaintext under
 *                 k = HSalsa20(X25519(ephemeral secret, collector public), 16 zero bytes): NaCl's box.before
 *
 *   plaintext: Ed25519 signature (64), u32 big-endian header length, header (UTF-8 JSON, `v: 2`), payload.
 *   signed:    "OPSE" 0x02 ‖ collector X25519 public key ‖ ephemeral public key ‖ nonce ‖ plaintext[64:]
 *
 * Signing over the collector's key stops anyone who opens an item from re-sealing it, still signed, to another.
 */
export const ITEM_VERSION = 2;
const HEAD = 4 + 1 + 32 + 32 + 24;
const SIG = 64;
const X_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ZERO16 = new Uint8Array(16);
const SIGMA = new TextEncoder().encode('expand 32-byte k');

// tweetnacl's typings leave out `lowlevel`; HSalsa20 is the one primitive used from it (box.before's second half)
const hsalsa20 = (nacl as unknown as { lowlevel: { crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): void } }).lowlevel
  .crypto_core_hsalsa20;

const xPublic = (raw: Uint8Array): KeyObject => createPublicKey({ key: Buffer.concat([X_SPKI, raw]), format: 'der', type: 'spki' });
const xPrivate = (raw: Uint8Array): KeyObject => createPrivateKey({ key: Buffer.concat([X_PKCS8, raw]), format: 'der', type: 'pkcs8' });
const rawPublic = (k: KeyObject): Buffer => (k.export({ format: 'der', type: 'spki' }) as Buffer).subarray(X_SPKI.length);

/** NaCl's box.before through node:crypto's X25519 (several times faster than tweetnacl's scalarmult). */
function boxKey(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const k = new Uint8Array(32);
  hsalsa20(k, ZERO16, diffieHellman({ privateKey, publicKey }), SIGMA);
  return k;
}

function signedBytes(collector: Uint8Array, ephemeral: Uint8Array, nonce: Uint8Array, body: Uint8Array): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([ITEM_VERSION]), collector, ephemeral, nonce, body]);
}

/** Test vectors only: a fixed ephemeral secret and nonce (never reuse them for real items). */
export interface FixedRandomness {
  ephemeralSecret: Uint8Array;
  nonce: Uint8Array;
}

/** Seals items to one collector for one device. */
export class ItemSealer {
  private readonly collectorKey: KeyObject;

  constructor(
    private readonly sign: nacl.SignKeyPair,
    private readonly collector: Uint8Array,
  ) {
    this.collectorKey = xPublic(collector);
  }

  seal(header: Record<string, unknown>, payload: Uint8Array, fixed?: FixedRandomness): Buffer {
    const eph = fixed ? xPrivate(fixed.ephemeralSecret) : generateKeyPairSync('x25519').privateKey;
    const ephPublic = rawPublic(createPublicKey(eph));
    const nonce = fixed?.nonce ?? randomBytes(nacl.secretbox.nonceLength);
    const head = Buffer.from(JSON.stringify({ ...header, v: ITEM_VERSION }), 'utf8');
    const plain = Buffer.alloc(SIG + 4 + head.length + payload.length);
    plain.writeUInt32BE(head.length, SIG);
    head.copy(plain, SIG + 4);
    plain.set(payload, SIG + 4 + head.length);
    plain.set(signDetached(signedBytes(this.collector, ephPublic, nonce, plain.subarray(SIG)), this.sign.secretKey), 0);
    const boxed = nacl.secretbox(plain, nonce, boxKey(eph, this.collectorKey));
    return Buffer.concat([MAGIC, Buffer.from([ITEM_VERSION]), this.sign.publicKey, ephPublic, nonce, boxed]);
  }
}

/** Opens items sealed to this collector's X25519 key. */
export class ItemOpener {
  private readonly privateKey: KeyObject;
  private readonly publicKey: Uint8Array;

  constructor(box: nacl.BoxKeyPair) {
    this.privateKey = xPrivate(box.secretKey);
    this.publicKey = box.publicKey;
  }

  /**
   * The header and payload, once the box opens and the signature by the Ed25519 key in the clear holds. Look that
   * key up (`sealedBy`) and refuse strangers before calling this: opening costs a key agreement.
   */
  open<H = Record<string, unknown>>(bytes: Uint8Array): { sender: string; header: H; payload: Buffer } {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (b.length < 5 || !b.subarray(0, 4).equals(MAGIC)) throw new EnvelopeError('garbage', 'not a sealed envelope (no OPSE magic)');
    if (b[4] !== ITEM_VERSION) throw new EnvelopeError('version', `envelope version ${b[4]}; upload items are version ${ITEM_VERSION}`);
    if (b.length < HEAD + nacl.secretbox.overheadLength + SIG + 4) throw new EnvelopeError('truncated', `envelope of ${b.length} bytes is cut short`);
    const sender = b.subarray(5, 37);
    const ephemeral = b.subarray(37, 69);
    const nonce = b.subarray(69, HEAD);
    let plain: Uint8Array | null = null;
    try {
      plain = nacl.secretbox.open(b.subarray(HEAD), nonce, boxKey(this.privateKey, xPublic(ephemeral)));
    } catch {
      plain = null; // a low-order ephemeral key: OpenSSL refuses the agreement
    }
    if (!plain) throw new EnvelopeError('cannot-open', 'the envelope does not open with this key (tampered, truncated, or sealed for someone else)');
    const p = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
    if (!verifyDetached(signedBytes(this.publicKey, ephemeral, nonce, p.subarray(SIG)), p.subarray(0, SIG), sender))
      throw new EnvelopeError('bad-signature', "the sender's signature inside does not hold");
    const len = p.readUInt32BE(SIG);
    let header: H & { v?: number };
    try {
      if (SIG + 4 + len > p.length) throw new Error('header longer than the envelope');
      header = JSON.parse(p.subarray(SIG + 4, SIG + 4 + len).toString('utf8'));
    } catch (err) {
      throw new EnvelopeError('bad-header', `the sealed header does not read (${(err as Error).message})`);
    }
    if (header?.v !== ITEM_VERSION) throw new EnvelopeError('bad-header', 'the sealed header has no matching version');
    return { sender: toB64(sender), header, payload: p.subarray(SIG + 4 + len) };
  }
}
