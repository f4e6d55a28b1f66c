import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import type { KeyRole } from '../vocabulary.js';
import { canonicalJson, fromB64, toB64 } from './encoding.js';
import type { Keyring, TrustedKey } from './keyring.js';
import { NonceCache } from './nonceCache.js';

/** What a signature binds: why, for whom, what, with what, when, and a value never used twice. */
export interface SignedFields {
  purpose: string;
  target: string;
  action: string;
  args: Record<string, unknown>;
  /** ms since the epoch, the signer's clock */
  issuedAt: number;
  /** base64 of 16 random bytes */
  nonce: string;
}

/** On the wire: the fields, the signer's Ed25519 public key and the signature, all as JSON. */
export interface SignedMessage extends SignedFields {
  v: 1;
  signer: string;
  sig: string;
}

export type RefusalReason = 'malformed' | 'unknown-key' | 'wrong-role' | 'bad-signature' | 'wrong-target' | 'expired' | 'replayed';
export const REFUSAL_REASONS: readonly RefusalReason[] = ['malformed', 'unknown-key', 'wrong-role', 'bad-signature', 'wrong-target', 'expired', 'replayed'];

export type Verdict = { ok: true; message: SignedMessage; signer: TrustedKey } | { ok: false; reason: RefusalReason; detail: string };

const DOMAIN = 'outpost-signed-message-v1\n';

/** The bytes a signature covers: a domain tag, then the canonical JSON of every field and the signer's key. */
function signedBytes(fields: SignedFields, signer: string): Uint8Array {
  const { purpose, target, action, args, issuedAt, nonce } = fields;
  return new TextEncoder().encode(DOMAIN + canonicalJson({ purpose, target, action, args, issuedAt, nonce, signer }));
}

export function signMessage(
  fields: Omit<SignedFields, 'issuedAt' | 'nonce'> & Partial<Pick<SignedFields, 'issuedAt' | 'nonce'>>,
  keys: nacl.SignKeyPair,
): SignedMessage {
  const full: SignedFields = { issuedAt: Date.now(), nonce: randomBytes(16).toString('base64'), ...fields };
  const signer = toB64(keys.publicKey);
  const sig = toB64(nacl.sign.detached(signedBytes(full, signer), keys.secretKey));
  return { v: 1, ...full, signer, sig };
}

function wellFormed(m: unknown): m is SignedMessage {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  return (
    x.v === 1 &&
    ['purpose', 'target', 'action', 'nonce', 'signer', 'sig'].every((k) => typeof x[k] === 'string') &&
    typeof x.issuedAt === 'number' &&
    Number.isFinite(x.issuedAt) &&
    typeof x.args === 'object' &&
    x.args !== null &&
    !Array.isArray(x.args)
  );
}

export interface VerifierOptions {
  keyring: Keyring;
  /** The purpose this verifier accepts (`command`, `announce`). */
  purpose: string;
  role: KeyRole;
  /** This node's id: a message for another node is refused. */
  target: string;
  windowMs?: number;
  now?: () => number;
  nonces?: NonceCache;
}

/**
 * Checks a signed message in the order that costs an attacker most and us least: shape, then key, then role,
 * then signature (the only expensive step, ~10 ms on a Pi), then target, clock window and nonce. Any field
 * changed after signing fails the signature.
 */
export class MessageVerifier {
  private readonly windowMs: number;
  private readonly now: () => number;
  readonly nonces: NonceCache;

  constructor(private readonly opts: VerifierOptions) {
    this.windowMs = opts.windowMs ?? 120_000;
    this.now = opts.now ?? Date.now;
    this.nonces = opts.nonces ?? new NonceCache(10_000, 2 * this.windowMs);
  }

  verify(message: unknown): Verdict {
    if (!wellFormed(message))
      return { ok: false, reason: 'malformed', detail: 'not a signed message (v, purpose, target, action, args, issuedAt, nonce, signer, sig)' };
    const m = message;
    if (m.purpose !== this.opts.purpose) return { ok: false, reason: 'malformed', detail: `purpose ${m.purpose} is not ${this.opts.purpose}` };
    const key = this.opts.keyring.signer(m.signer);
    if (!key?.sign) return { ok: false, reason: 'unknown-key', detail: "the signing key is not in this node's keyring" };
    if (!key.roles.has(this.opts.role)) return { ok: false, reason: 'wrong-role', detail: `key ${key.name} has no ${this.opts.role} role` };
    const sig = fromB64(m.sig);
    let valid = false;
    try {
      valid = sig !== null && sig.length === nacl.sign.signatureLength && nacl.sign.detached.verify(signedBytes(m, m.signer), sig, key.sign);
    } catch {
      valid = false; // args that canonical JSON cannot hold
    }
    if (!valid) return { ok: false, reason: 'bad-signature', detail: `the signature does not match key ${key.name}` };
    if (m.target !== this.opts.target) return { ok: false, reason: 'wrong-target', detail: `signed for ${m.target}, not ${this.opts.target}` };
    const skew = this.now() - m.issuedAt;
    if (Math.abs(skew) > this.windowMs)
      return {
        ok: false,
        reason: 'expired',
        detail: `issued ${Math.round(skew / 1000)} s from now; the window is ±${this.windowMs / 1000} s (check the clocks)`,
      };
    if (!this.nonces.admit(m.nonce, this.now())) return { ok: false, reason: 'replayed', detail: 'this nonce was already used' };
    return { ok: true, message: m, signer: key };
  }
}
