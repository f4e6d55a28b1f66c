import { AsyncLocalStorage } from 'node:async_hooks';
import { Counter, type Registry } from 'prom-client';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';

/**
 * The component whose start-up created the running callback: timers, sockets and promises made while a
 * component starts carry its name, so an error nobody handled can still be blamed on its owner.
 */
const scope = new AsyncLocalStorage<{ component: string }>();

export function inComponent<T>(component: string, fn: () => T): T {
  return scope.run({ component }, fn);
}

/** One counter for the whole process: a restart makes a new registry, and the count must survive it. */
const unhandled = new Counter({
  name: 'outpost_unhandled_errors_total',
  help: 'Errors that reached the top: unhandled rejections, uncaught exceptions, failed background work',
  labelNames: ['kind'],
  registers: [],
});
for (const kind of ['rejection', 'exception', 'background']) unhandled.inc({ kind }, 0);

/** Adds the process-wide counter to a registry (each generation of the daemon has its own). */
export function registerUnhandledCounter(registry: Registry): void {
  if (!registry.getSingleMetric('outpost_unhandled_errors_total')) registry.registerMetric(unhandled);
}

/** What a last-resort logger records about an error: its owner when known, its message and stack. */
function describe(err: unknown): Record<string, unknown> {
  const component = scope.getStore()?.component;
  return { ...(component ? { component } : {}), err: errorMessage(err), stack: err instanceof Error ? err.stack : undefined };
}

/**
 * The daemon's policy for errors that reached the top. A rejected promise nobody awaited left no state half
 * changed that we know of: it is logged, counted, and the daemon keeps running (under systemd a restart would
 * drop every camera for a fault that one frame or one message hit). An uncaught exception unwound a stack in
 * the middle of something: it is logged, counted, and the process exits 70 (OUTPOST_E_INTERNAL, never 78, which
 * systemd's RestartPreventExitStatus keeps down) so that `Restart=on-failure` starts it clean.
 */
export function installLastResort(log: Logger, exit: (code: number) => void): void {
  process.on('unhandledRejection', (reason) => {
    unhandled.inc({ kind: 'rejection' });
    log.error(describe(reason), 'unhandled promise rejection (a bug: please report it); still running');
  });
  process.on('uncaughtException', (err) => {
    unhandled.inc({ kind: 'exception' });
    log.fatal(describe(err), 'uncaught exception (a bug: please report it); exiting so that systemd restarts the daemon');
    exit(70);
  });
}

/** A `.catch` for work started and not awaited: logs it with its owner and counts it (kind `background`). */
export function logRejection(log: Logger, what: string): (err: unknown) => void {
  return (err) => {
    unhandled.inc({ kind: 'background' });
    log.error(describe(err), `${what} failed`);
  };
}
