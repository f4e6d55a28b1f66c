import type { ChildProcess } from 'node:child_process';

/**
 * The process groups this process started (each ffmpeg runs in one, so its own children die with it). Stopping
 * a group escalates on a timer: SIGTERM and SIGCONT (a stopped process cannot act on TERM), then SIGKILL. The
 * set is process-wide on purpose: `killAllGroups` is what the CLI's one exit handler calls, so no child
 * survives the daemon, whichever way it ends.
 */
const live = new Set<ChildProcess>();

const alive = (child: ChildProcess) => child.pid !== undefined && child.exitCode === null && child.signalCode === null;

function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (!alive(child)) return;
  try {
    process.kill(-child.pid!, sig);
  } catch {
    child.kill(sig);
  }
}

export function trackGroup(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** TERM (and CONT) now, KILL after `graceMs` if the group is still there; resolves once the leader has exited. */
export function stopGroup(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (!alive(child)) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    const force = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    signalGroup(child, 'SIGTERM');
    signalGroup(child, 'SIGCONT');
  });
}

/** Last resort at process exit: SIGKILL to every group still alive (synchronous, as exit handlers must be). */
export function killAllGroups(): void {
  for (const child of live) signalGroup(child, 'SIGKILL');
}
