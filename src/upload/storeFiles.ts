import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fdatasyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/** Modes of what the collector writes, whatever the umask: the items are a site's data, not the world's. */
export const FILE_MODE = 0o640;
export const DIR_MODE = 0o750;

/** A temporary name in the same folder: dot-first and random, so nothing reads it as an item. */
export const TEMP_MARK = '.tmp-';
const tempFor = (file: string) => join(dirname(file), `.${file.slice(dirname(file).length + 1)}${TEMP_MARK}${randomBytes(6).toString('hex')}`);

/** `dir` and the folders above it up to `root` (not included), each created 0750 (chmod: the umask may have taken bits). */
export function ensureDir(root: string, dir: string): void {
  if (dir === root || dir.length <= root.length) {
    if (mkdirSync(root, { recursive: true, mode: DIR_MODE }) !== undefined) chmodSync(root, DIR_MODE);
    return;
  }
  ensureDir(root, dirname(dir));
  makeDir(dir);
}

function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  chmodSync(dir, DIR_MODE);
}

/** Bytes written to a new temp file (0640, synced: a name only ever points at whole bytes); returns its path. */
function writeTemp(file: string, bytes: Buffer): string {
  const tmp = tempFor(file);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
  try {
    fchmodSync(fd, FILE_MODE);
    writeFileSync(fd, bytes);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

/** Puts bytes at `file` unless something is there already: false then (a hard link, so never half a file). */
export function writeOnce(file: string, bytes: Buffer): boolean {
  const tmp = writeTemp(file, bytes);
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/** Puts bytes at `file`, replacing whatever a crash left there (rename: never half a file). */
export function writeReplacing(file: string, bytes: Buffer): void {
  renameSync(writeTemp(file, bytes), file);
}

export function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** The file's bytes, or null when there is no such file. */
export function readIfPresent(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
