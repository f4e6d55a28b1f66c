import { randomBytes } from 'node:crypto';
import type nacl from 'tweetnacl';
import type { KeyRole } from '../vocabulary.js';
import type { Refusal } from '../refusals.js';
import { signDetached, verifyDetached } from './ed25519.js';
import { canonicalJson, fromB64, toB64 } from './encoding.js';
import type { Keyring, TrustedKey } from './keyring.js';
import { NonceCache } from './nonceCache.js';
import { nonceGuard, type ReplayGuard } from './replayGuard.js';

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

/** Why a signed message was refused: names from the one table (refusals.ts). */
export const REFUSAL_REASONS = [
  'malformed',
  'unknown-key',
  'wrong-role',
  'wrong-target',
  'expired',
  'bad-signature',
  'replayed',
  'out-of-order',
] as const satisfies readonly Refusal[];
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * A refusal says whether its signature was checked and held (`authentic`): only an authentic message may be
 * answered. A refusal before the signature check carries the message and its keyring entry, so a caller with
 * budget to spare can check it (`MessageVerifier.authentic`) before answering.
 */
export type Verdict =
  | { ok: true; message: SignedMessage; signer: TrustedKey }
  | { ok: false; reason: RefusalReason; detail: string; authentic: boolean; message?: SignedMessage; signer?: TrustedKey };

/** A message id (nonce) longer than this is refused before it is looked up or remembered anywhere. */
export const MAX_NONCE_CHARS = 64;
const NONCE = /^[A-Za-z0-9+/=_-]{16,64}$/;
const SHORT = 128;

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
  const sig = toB64(signDetached(signedBytes(full, signer), keys.secretKey));
  return { v: 1, ...full, signer, sig };
}

function wellFormed(m: unknown): m is SignedMessage {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  return (
    x.v === 1 &&
    ['purpose', 'target', 'action', 'signer', 'sig'].every((k) => typeof x[k] === 'string' && (x[k] as string).length <= SHORT) &&
    typeof x.nonce === 'string' &&
    NONCE.test(x.nonce) &&
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
  /** What remembers messages run (default: nonces in memory within twice the window). */
  replay?: ReplayGuard;
}

/**
 * Checks a signed message cheapest first, so that what a stranger can send costs no signature check: shape
 * (message id capped), purpose, target, key, role and clock window; then the signature (node:crypto, ~0.1 ms);
 * last whether it is new (nonce, per-signer order). Any field changed after signing fails the signature.
 */
export class MessageVerifier {
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly replay: ReplayGuard;

  constructor(private readonly opts: VerifierOptions) {
    this.windowMs = opts.windowMs ?? 120_000;
    this.now = opts.now ?? Date.now;
    this.replay = opts.replay ?? nonceGuard(new NonceCache(10_000, 2 * this.windowMs));
  }

  verify(message: unknown): Verdict {
    if (!wellFormed(message))
      return {
        ok: false,
        reason: 'malformed',
        detail: `not a signed message (v, purpose, target, action, args, issuedAt, nonce of at most ${MAX_NONCE_CHARS} characters, signer, sig)`,
        authentic: false,
      };
    const m = message;
    if (m.purpose !== this.opts.purpose)
      return { ok: false, reason: 'malformed', detail: `purpose ${m.purpose} is not ${this.opts.purpose}`, authentic: false };
    const key = this.opts.keyring.signer(m.signer);
    if (!key?.sign) return { ok: false, reason: 'unknown-key', detail: "the signing key is not in this node's keyring", authentic: false };
    const early = (reason: RefusalReason, detail: string): Verdict => ({ ok: false, reason, detail, authentic: false, message: m, signer: key });
    if (!key.roles.has(this.opts.role)) return early('wrong-role', `key ${key.name} has no ${this.opts.role} role`);
    if (m.target !== this.opts.target) return early('wrong-target', `signed for ${m.target}, not ${this.opts.target}`);
    const skew = this.now() - m.issuedAt;
    if (Math.abs(skew) > this.windowMs)
      return early('expired', `issued ${Math.round(skew / 1000)} s from now; the window is ±${this.windowMs / 1000} s (check the clocks)`);
    if (!this.authentic(m, key)) return { ok: false, reason: 'bad-signature', detail: `the signature does not match key ${key.name}`, authentic: false };
    const late = (reason: RefusalReason, detail: string): Verdict => ({ ok: false, reason, detail, authentic: true, message: m, signer: key });
    const fresh = this.replay.admit(m.signer, m.issuedAt, m.nonce, this.now());
    if (fresh === 'replayed') return late('replayed', 'this message was already run');
    if (fresh === 'out-of-order') return late('out-of-order', `key ${key.name} already ran a newer message; sign a new one`);
    return { ok: true, message: m, signer: key };
  }

  /** Whether the signature of `m` holds for this keyring entry (the one expensive step). */
  authentic(m: SignedMessage, key: TrustedKey): boolean {
    const sig = fromB64(m.sig);
    if (!sig || !key.sign) return false;
    try {
      return verifyDetached(signedBytes(m, m.signer), sig, key.sign);
    } catch {
      return false; // args that canonical JSON cannot hold
    }
  }
}
