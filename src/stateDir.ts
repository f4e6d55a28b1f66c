import { closeSync, fsyncSync, mkdirSync, openSync, realpathSync, statSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { OutpostError, describeSystemError, isSystemError } from './errors.js';

/** statfs magic numbers of kernel file systems where a state folder can never live. */
const VIRTUAL_FS: Record<number, string> = { 0x9fa0: 'procfs', 0x62656572: 'sysfs', 0x1373: 'devfs', 0x01021994: 'tmpfs-on-dev' };
const VIRTUAL_ROOTS = ['/proc', '/sys', '/dev'];

function stateError(dir: string, problem: string, fix: string, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_STATE', `node.stateDir ${dir}: ${problem}; ${fix}`, { cause });
}

/** The deepest part of `dir` that exists (a folder must be created below it). */
function existingAncestor(dir: string): string {
  let at = dir;
  for (;;) {
    try {
      statSync(at);
      return at;
    } catch (err) {
      if (!isSystemError(err) || (err.code !== 'ENOENT' && err.code !== 'ENOTDIR')) throw err;
      if (dirname(at) === at) return at;
      at = dirname(at);
    }
  }
}

/**
 * Checks the state folder once, early, and creates it: a path under a file, on /proc or /sys, unwritable for
 * this user or on a full disk is refused with the folder named and what to do. Creating the folders one level
 * at a time (never a recursive mkdir) keeps a bad path from spinning. Returns the free bytes on its disk.
 */
export function prepareStateDir(stateDir: string): { freeBytes: number } {
  const dir = resolve(stateDir);
  const fix = 'set node.stateDir (or OUTPOST_NODE_STATE_DIR) to a writable folder';
  let base: string;
  try {
    base = existingAncestor(dir);
  } catch (err) {
    throw stateError(dir, isSystemError(err) ? describeSystemError(err) : String(err), fix, err);
  }
  const real = realpathSync(base);
  if (VIRTUAL_ROOTS.some((r) => real === r || real.startsWith(r + '/'))) throw stateError(dir, `${real} is a kernel file system`, fix);
  const fsType = statfsSync(base).type;
  if (VIRTUAL_FS[fsType]) throw stateError(dir, `${real} is on ${VIRTUAL_FS[fsType]}`, fix);
  if (!statSync(base).isDirectory()) throw stateError(dir, `${base} is a file, not a folder`, fix);
  try {
    let at = base;
    for (const part of dir.slice(base.length).split('/').filter(Boolean)) mkdirSync((at = join(at, part)));
    writeProbe(dir);
  } catch (err) {
    if (!isSystemError(err)) throw err;
    const user = userInfo().username;
    const hint =
      err.code === 'ENOSPC' || err.code === 'EDQUOT'
        ? 'free space on that disk (model variants, the outbox and logs live there)'
        : `make it writable for user ${user} (sudo chown -R ${user}: ${dir}) or ${fix}`;
    throw stateError(dir, describeSystemError(err), hint, err);
  }
  const fs = statfsSync(dir);
  return { freeBytes: fs.bavail * fs.bsize };
}

/** Writes and syncs a small file: proves the folder is writable and the disk not full. */
function writeProbe(dir: string): void {
  const file = join(dir, `.outpost-write-test-${process.pid}`);
  const fd = openSync(file, 'w', 0o600);
  try {
    writeSync(fd, Buffer.alloc(4096));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}
