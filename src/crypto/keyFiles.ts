import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { OutpostError, describeSystemError, isSystemError } from '../errors.js';
import { fromB64, toB64 } from './encoding.js';

/** A node's own keys: Ed25519 to sign (commands, announcements), X25519 to seal (uploads, offload, snapshots). */
export interface NodeKeys {
  sign: nacl.SignKeyPair;
  box: nacl.BoxKeyPair;
}

export interface PublicKeys {
  /** base64 Ed25519 public key (32 bytes) */
  sign: string;
  /** base64 X25519 public key (32 bytes) */
  box: string;
  /** A short name for eyes: the first 16 hex digits of sha256(sign || box), in groups of four. */
  fingerprint: string;
}

const SECRET = 'secret.json';
const PUBLIC = 'public.json';

export function fingerprint(sign: Uint8Array, box: Uint8Array): string {
  const hex = createHash('sha256').update(sign).update(box).digest('hex').slice(0, 16);
  return hex.match(/.{4}/g)!.join('-');
}

export function publicKeys(keys: NodeKeys): PublicKeys {
  return { sign: toB64(keys.sign.publicKey), box: toB64(keys.box.publicKey), fingerprint: fingerprint(keys.sign.publicKey, keys.box.publicKey) };
}

/** Writes a file whole or not at all, with its mode set before it has content. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/**
 * Generates a node's key pairs into `dir` (mode 0700): `secret.json` (0600) and `public.json` (0644). An
 * existing pair is kept unless `force`: replacing keys cuts a node off from every keyring that trusts it.
 */
export function generateKeys(dir: string, force = false): PublicKeys {
  if (existsSync(join(dir, SECRET)) && !force) {
    throw new OutpostError('OUTPOST_E_USAGE', `${dir} already holds keys (${SECRET}); keyrings trust them. Pass --force to replace them`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const keys: NodeKeys = { sign: nacl.sign.keyPair(), box: nacl.box.keyPair() };
    const pub = publicKeys(keys);
    writeAtomic(join(dir, SECRET), JSON.stringify({ sign: toB64(keys.sign.secretKey), box: toB64(keys.box.secretKey) }) + '\n', 0o600);
    writeAtomic(join(dir, PUBLIC), JSON.stringify(pub, null, 2) + '\n', 0o644);
    return pub;
  } catch (err) {
    throw isSystemError(err) ? new OutpostError('OUTPOST_E_KEYS', `cannot write keys to ${dir}: ${describeSystemError(err)}`, { cause: err }) : err;
  }
}

/** Reads a node's keys; refuses a secret file others can read (an SD card's keys must not be world-readable). */
export function readKeys(dir: string): NodeKeys {
  const file = join(dir, SECRET);
  let raw: { sign?: unknown; box?: unknown };
  try {
    const st = statSync(file);
    if (st.mode & 0o077) throw new OutpostError('OUTPOST_E_KEYS', `${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 ${file}`);
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if (err instanceof OutpostError) throw err;
    const why = isSystemError(err) ? describeSystemError(err) : 'not valid JSON';
    throw new OutpostError('OUTPOST_E_KEYS', `cannot read this node's keys from ${file} (${why}); run outpost keys generate`, { cause: err });
  }
  const sign = fromB64(String(raw.sign));
  const box = fromB64(String(raw.box));
  if (!sign || sign.length !== nacl.sign.secretKeyLength || !box || box.length !== nacl.box.secretKeyLength) {
    throw new OutpostError('OUTPOST_E_KEYS', `${file} does not hold an Ed25519 and an X25519 secret key; run outpost keys generate --force`);
  }
  return { sign: nacl.sign.keyPair.fromSecretKey(sign), box: nacl.box.keyPair.fromSecretKey(box) };
}
