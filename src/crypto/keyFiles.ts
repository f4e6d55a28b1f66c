import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
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

const { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

const keysError = (message: string, cause?: unknown) => new OutpostError('OUTPOST_E_KEYS', message, cause === undefined ? undefined : { cause });

/** Refuses a path that is a symbolic link: a planted link would have keys written, or read, where it points. */
function refuseLink(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    if (isSystemError(err) && err.code === 'ENOENT') return;
    throw err;
  }
  if (st.isSymbolicLink()) throw keysError(`${path} is a symbolic link; keys are only kept in a real folder (remove the link: rm ${path})`);
}

/**
 * Writes a file whole or not at all: a temp file of a random name created with O_EXCL|O_NOFOLLOW (so no planted
 * file or link is ever opened), its mode set on the descriptor before it has content, then renamed over `file`.
 */
function writeAtomic(file: string, text: string, mode: number): void {
  refuseLink(file);
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    try {
      fchmodSync(fd, mode);
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Creates `dir` (0700) or tightens it to 0700, through a descriptor opened without following a link. */
function keysFolder(dir: string): void {
  refuseLink(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Generates a node's key pairs into `dir` (mode 0700): `secret.json` (0600) and `public.json` (0644). An
 * existing pair is kept unless `force`: replacing keys cuts a node off from every keyring that trusts it.
 * A symbolic link for the folder or either file is refused.
 */
export function generateKeys(dir: string, force = false): PublicKeys {
  try {
    for (const path of [dir, join(dir, SECRET), join(dir, PUBLIC)]) refuseLink(path);
    if (existsSync(join(dir, SECRET)) && !force) {
      throw new OutpostError('OUTPOST_E_USAGE', `${dir} already holds keys (${SECRET}); keyrings trust them. Pass --force to replace them`);
    }
    keysFolder(dir);
    const keys: NodeKeys = { sign: nacl.sign.keyPair(), box: nacl.box.keyPair() };
    const pub = publicKeys(keys);
    writeAtomic(join(dir, SECRET), JSON.stringify({ sign: toB64(keys.sign.secretKey), box: toB64(keys.box.secretKey) }) + '\n', 0o600);
    writeAtomic(join(dir, PUBLIC), JSON.stringify(pub, null, 2) + '\n', 0o644);
    return pub;
  } catch (err) {
    throw isSystemError(err) ? keysError(`cannot write keys to ${dir}: ${describeSystemError(err)}`, err) : err;
  }
}

/** A node's identity made on the board itself at first start: its keys, generated when `dir` has none. Null when it had them. */
export function keysAtFirstStart(dir: string): PublicKeys | null {
  return existsSync(join(dir, SECRET)) ? null : generateKeys(dir);
}

/** The keys folder as `readKeys` accepts it: a real folder nobody but its owner can write to. */
function checkKeysFolder(dir: string): void {
  refuseLink(dir);
  const st = statSync(dir);
  if (!st.isDirectory()) throw keysError(`${dir} is not a folder; node.keysDir names the folder of secret.json`);
  if (st.mode & 0o022)
    throw keysError(
      `${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}): anyone who can write there can swap this node's keys; chmod 700 ${dir}`,
    );
}

/** The secret file's text, opened without following a link; refused when group or others may read it. */
function readSecret(file: string): string {
  const fd = openSync(file, O_RDONLY | O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (st.mode & 0o077) throw keysError(`${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 ${file}`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a node's keys; refuses a secret file others can read (an SD card's keys must not be world-readable), a
 * keys folder others can write to, and a symbolic link for either.
 */
export function readKeys(dir: string): NodeKeys {
  const file = join(dir, SECRET);
  let raw: { sign?: unknown; box?: unknown };
  try {
    checkKeysFolder(dir);
    raw = JSON.parse(readSecret(file));
  } catch (err) {
    if (err instanceof OutpostError) throw err;
    const why = isSystemError(err) ? (err.code === 'ELOOP' ? 'it is a symbolic link: remove it' : describeSystemError(err)) : 'not valid JSON';
    throw keysError(`cannot read this node's keys from ${file} (${why}); run outpost keys generate`, err);
  }
  const sign = fromB64(String(raw.sign));
  const box = fromB64(String(raw.box));
  if (!sign || sign.length !== nacl.sign.secretKeyLength || !box || box.length !== nacl.box.secretKeyLength) {
    throw new OutpostError('OUTPOST_E_KEYS', `${file} does not hold an Ed25519 and an X25519 secret key; run outpost keys generate --force`);
  }
  return { sign: nacl.sign.keyPair.fromSecretKey(sign), box: nacl.box.keyPair.fromSecretKey(box) };
}
