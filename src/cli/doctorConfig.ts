import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, formatProblem, loadConfig, type ResolvedConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { configPath } from './common.js';

/** The config doctor checks, why that one, and what was wrong with it. */
export interface DoctorConfig {
  configFile: string;
  config: ResolvedConfig | null;
  configProblem: string | null;
  /** said beside the config finding: the demo was checked because nothing is installed */
  configNote: string | null;
  /** the root its paths live under: `/` for a fallback config outside the root (this machine's own paths) */
  pathRoot: string;
}

/**
 * --config, else $OUTPOST_CONFIG, else the installed ROOT/etc/outpost/outpost.yaml (what the service runs), else
 * ./config/outpost.yaml or the demo, saying that no installed config was found.
 */
export function doctorConfig(root: string, flag: string | undefined): DoctorConfig {
  const installed = join(root, 'etc/outpost/outpost.yaml');
  const chosen = flag || process.env.OUTPOST_CONFIG || (existsSync(installed) ? installed : undefined);
  const configFile = chosen ?? configPath(undefined);
  const configNote = chosen ? null : `no installed config at ${installed}; checked ${configFile} instead`;
  const pathRoot = chosen || underRoot(root, configFile) === configFile ? root : '/';
  try {
    return { configFile, config: loadConfig(configFile).config, configProblem: null, configNote, pathRoot };
  } catch (err) {
    // doctor still reports on the machine
    const configProblem = err instanceof ConfigError ? err.problems.map(formatProblem).join('; ') : errorMessage(err);
    return { configFile, config: null, configProblem, configNote, pathRoot };
  }
}

/** A path of the config as seen from here: under `root` unless the config's own folder already put it there. */
export function underRoot(root: string, path: string): string {
  if (root === '/' || path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`)) return path;
  return join(root, path);
}
