import { closeSync, openSync, readFileSync, unlinkSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import { OutpostError, describeSystemError, isSystemError } from './errors.js';

const LOCK_FILE = 'outpost.pid';

/** The PID in a lock file, or null when the file is gone or holds no number. */
function holderOf(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` is a live Outpost (not a process that got the PID of one that died: after a reboot or in a
 * container PIDs come round again, and a board must not refuse to start on its own old lock for good).
 */
function isLiveOutpost(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return isSystemError(err) && err.code === 'EPERM'; // alive, another user's: assume it is one
  }
  try {
    return /outpost|cli\.js/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // cannot tell: safer to believe it
  }
}

/**
 * One daemon per state folder: `stateDir/outpost.pid`, made with O_EXCL and holding our PID. A file whose PID
 * is not a live Outpost is stale (a SIGKILL or a power cut left it) and is taken over. Two daemons on one state
 * folder would share the outbox, the birth sequence and the broker client id, and take each other's session.
 */
export class StateLock {
  private constructor(readonly file: string) {}

  static acquire(stateDir: string): StateLock {
    const file = join(stateDir, LOCK_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        return new StateLock(file);
      } catch (err) {
        if (!isSystemError(err) || err.code !== 'EEXIST') {
          const why = isSystemError(err) ? describeSystemError(err) : String(err);
          throw new OutpostError('OUTPOST_E_STATE', `cannot lock the state folder ${stateDir}: ${why}`, { cause: err });
        }
      }
      const holder = holderOf(file);
      if (holder !== null && isLiveOutpost(holder))
        throw new OutpostError(
          'OUTPOST_E_LOCKED',
          `another outpost (PID ${holder}) runs on the state folder ${stateDir} (${file}); stop it, or give this one its own node.stateDir`,
        );
      try {
        unlinkSync(file); // stale: its owner is gone
      } catch (err) {
        if (!isSystemError(err) || err.code !== 'ENOENT') throw err;
      }
    }
    throw new OutpostError('OUTPOST_E_LOCKED', `cannot take the lock ${file}: another process keeps making it`);
  }

  /** Removes the file if it is still ours (never another daemon's that took over a lock it thought stale). */
  release(): void {
    if (holderOf(this.file) !== process.pid) return;
    try {
      unlinkSync(this.file);
    } catch {
      /* already gone */
    }
  }
}
