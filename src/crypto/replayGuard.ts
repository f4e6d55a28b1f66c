import { NonceCache } from './nonceCache.js';

/** Whether a signed message that passed its signature check is new: `replayed` (seen), `out-of-order` (older than one already run). */
export type Freshness = 'fresh' | 'replayed' | 'out-of-order';

/**
 * What a verifier asks once a signature holds: is this message new from this signer? `admit` remembers it when it
 * is (durably, for the ledger, before the message acts) and may throw when it cannot remember it.
 */
export interface ReplayGuard {
  admit(signer: string, issuedAt: number, nonce: string, now: number): Freshness;
}

/** Nonces only, in memory: enough for announcements, where a restart forgetting them costs nothing. */
export function nonceGuard(nonces: NonceCache): ReplayGuard {
  return { admit: (_signer, _issuedAt, nonce, now) => (nonces.admit(nonce, now) ? 'fresh' : 'replayed') };
}
