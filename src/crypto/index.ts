export { toB64, fromB64, canonicalJson } from './encoding.js';
export { generateKeys, keysAtFirstStart, readKeys, publicKeys, fingerprint, type NodeKeys, type PublicKeys } from './keyFiles.js';
export { Keyring, isPublicKey, publicKeyBytes, KEY_ROLES, type KeyRole, type KeyringEntry, type TrustedKey } from './keyring.js';
export {
  signMessage,
  MessageVerifier,
  REFUSAL_REASONS,
  MAX_NONCE_CHARS,
  type SignedMessage,
  type SignedFields,
  type RefusalReason,
  type Verdict,
  type VerifierOptions,
} from './signedMessage.js';
export { signAnswer, checkAnswer, type AnswerFields, type SignedAnswer, type AnswerExpectation } from './signedAnswer.js';
export { NonceCache } from './nonceCache.js';
export { nonceGuard, type ReplayGuard, type Freshness } from './replayGuard.js';
export { ReplayLedger } from './replayLedger.js';
export { SealedEnvelope, EnvelopeError, sealedBy, SENDER_BYTES, type Opened, type EnvelopeFailure } from './envelope.js';
export { ItemSealer, ItemOpener, ITEM_VERSION, type FixedRandomness } from './sealedItem.js';
export { signDetached, verifyDetached, SIGNATURE_BYTES, PUBLIC_KEY_BYTES } from './ed25519.js';
