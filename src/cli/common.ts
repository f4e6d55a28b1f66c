import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';

/** The demo config that ships inside the package. */
export const EMBEDDED_CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), '../../config/outpost.yaml');

/** --config, else $OUTPOST_CONFIG, else ./config/outpost.yaml, else the embedded demo config. */
export function configPath(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.OUTPOST_CONFIG) return process.env.OUTPOST_CONFIG;
  const local = join(process.cwd(), 'config', 'outpost.yaml');
  return existsSync(local) ? local : EMBEDDED_CONFIG;
}

/** Loads the config or prints one `FILE:LINE:COL: path: message` line per problem and exits 78. */
export function loadOrExit(file: string): LoadedConfig {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + '\n');
      process.exit(err.exitCode);
    }
    throw err;
  }
}

/** Last stop for errors a command did not handle: a clear line and the catalogued exit code. */
export function exitOnError(err: unknown): never {
  if (err instanceof OutpostError) {
    process.stderr.write(`outpost: ${err.code}: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`outpost: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : errorMessage(err)}\n`);
  process.exit(70);
}
