import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';
import { Registry } from 'prom-client';
import { ComponentList, EventBus, systemClock, type Component, type ComponentContext } from '../core/index.js';
import { ConfigError, type ResolvedConfig } from '../config/index.js';
import { OutpostError, asOutpostError } from '../errors.js';
import { createLogger, writeError } from '../log.js';

/** The demo config that ships inside the package. */
const EMBEDDED_CONFIG = resolve(dirname(fileURLToPath(import.meta.url)), '../../config/outpost.yaml');

/** --config, else $OUTPOST_CONFIG, else ./config/outpost.yaml, else the embedded demo config. */
export function configPath(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.OUTPOST_CONFIG) return process.env.OUTPOST_CONFIG;
  const local = join(process.cwd(), 'config', 'outpost.yaml');
  return existsSync(local) ? local : EMBEDDED_CONFIG;
}

/** A key folder named on the command line: a file there (…/secret.json) is a usage error naming its folder. */
export function keysFolder(dir: string, flag: string): string {
  if (statSync(dir, { throwIfNoEntry: false })?.isFile())
    throw new OutpostError('OUTPOST_E_USAGE', `${flag} ${dir} is a file; give the folder that holds secret.json and public.json: ${flag} ${dirname(dir)}`);
  return dir;
}

/** The context a CLI command builds its components from: the config, its own bus and registry, a quiet logger. */
export function cliContext(config: Readonly<ResolvedConfig>, name: string): ComponentContext {
  const level = config.logging.level === 'info' ? 'warn' : config.logging.level;
  const log = createLogger({ level, format: config.logging.format }).child({ component: name });
  return { config, bus: new EventBus(log), log, clock: systemClock, stateDir: config.node.stateDir, registry: new Registry() };
}

/** Starts components in order, runs `body`, and always stops them in reverse: a CLI command's whole life. */
export async function runComponents<T>(ctx: ComponentContext, components: Component[], body: () => Promise<T>): Promise<T> {
  const list = new ComponentList(components, ctx.bus, ctx.log);
  const abort = new AbortController();
  try {
    await list.start(abort.signal);
    return await body();
  } finally {
    await list.stop();
  }
}

/**
 * Last stop for every command: a catalogued error prints one line and exits with its code; a system error
 * (EACCES, ENOSPC, EBUSY …) names the file without a stack trace; only a bug (exit 70) shows its stack.
 */
export function exitOnError(err: unknown): never {
  if (err instanceof ConfigError) {
    writeError(err.message);
    process.exit(err.exitCode);
  }
  const e: OutpostError = asOutpostError(err);
  writeError(`outpost: ${e.code}: ${e.message}`);
  process.exit(e.exitCode);
}

/** A TCP port free on loopback now (for the processes a bench starts). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A commander parser for counts: a whole number of at least 1, else a usage error naming the value. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}
