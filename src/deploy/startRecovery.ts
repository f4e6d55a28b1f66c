import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { candidatePath } from './configChange.js';
import { DeployState, type Pending, type RollbackReason } from './deployState.js';
import { writeDurable } from '../durableFile.js';

/** Starts on a new config that end before its confirm window does: after this many, it is rolled back at the next start. */
export const MAX_CONFIRMING_STARTS = 3;

/**
 * Before the daemon starts on its config file: a deployment cut short (SIGKILL, power loss, a crash loop) ends
 * on the old state or the new, never a mix. Before it was applied: nothing changed (failed, interrupted). While it
 * was being put in place or rolled back: the last good config is put back. While confirming: the window
 * resumes, unless the board has started too often on it. Returns whether the config file was put back (load it again).
 */
export function recoverDeployment(configFile: string, stateDir: string, now = Date.now()): boolean {
  const state = new DeployState(stateDir);
  let p: Pending | null;
  try {
    p = state.load().pending;
  } catch {
    return false; // unreadable: the deployer says so once the log is up, and the daemon runs on its file as it is
  }
  if (!p) return false;
  if (['received', 'fetched', 'validated', 'shadow'].includes(p.step)) {
    if (existsSync(candidatePath(configFile))) unlinkSync(candidatePath(configFile));
    state.finish({ id: p.id, outcome: 'failed', reason: 'interrupted', detail: `stopped during ${p.step}; nothing was applied`, uncounted: true }, now);
    return false;
  }
  const boots = (p.boots ?? 0) + 1;
  if (p.step === 'confirming' && boots <= MAX_CONFIRMING_STARTS) {
    state.step('confirming', { boots });
    return false;
  }
  const reason: RollbackReason = p.step === 'confirming' ? 'crash-loop' : ((p.reason as RollbackReason | undefined) ?? 'interrupted');
  if (p.step !== 'rolling-back') state.step('rolling-back', { reason });
  restoreGoodConfig(configFile, state.goodConfig);
  state.finish({ id: p.id, outcome: 'rolled-back', reason, detail: `restored at start (stopped during ${p.step})`, uncounted: true }, now);
  return true;
}

/** Puts the last good config back in place (durably, keeping the file's mode: it may hold secrets). */
export function restoreGoodConfig(configFile: string, goodFile: string): void {
  const good = readFileSync(goodFile);
  if (existsSync(configFile) && readFileSync(configFile).equals(good)) return;
  writeDurable(configFile, good, existsSync(configFile) ? statSync(configFile).mode & 0o777 : 0o600);
}
