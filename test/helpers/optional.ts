import { commandExists } from './daemonProcess.js';

/**
 * For tests that need something optional (../shared, a Debian tool): true means "skip", said once with the fix.
 * In CI (CI=true) nothing optional may be missing: the test file fails instead of passing without checking.
 */
export function missing(what: string, present: boolean, fix: string): boolean {
  if (present) return false;
  if (process.env.CI) throw new Error(`${what} is missing in CI; ${fix}`);
  console.warn(`skipped tests that need ${what}: ${fix}`);
  return true;
}

export const missingShared = (present: boolean, what = '../shared') => missing(what, present, 'it ships beside the repository in CI (see ../shared/README.md)');

export const missingTool = (cmd: string, debianPackage: string) => missing(cmd, commandExists(cmd), `apt-get install ${debianPackage} (.ci/run does)`);
