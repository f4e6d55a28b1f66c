import { ConfigError, loadConfig } from '../config/index.js';
import { Daemon } from '../daemon.js';
import { errorMessage } from '../errors.js';
import { createLogger } from '../log.js';
import { configPath, exitOnError, loadOrExit } from './common.js';

const SHUTDOWN_GRACE_MS = 9_000;

/** `outpost run`: the daemon. SIGTERM/SIGINT stop it within 10 s (exit 0); SIGHUP reloads the config. */
export async function runCommand(opts: { config?: string }): Promise<void> {
  const file = configPath(opts.config);
  const loaded = loadOrExit(file);
  const log = createLogger(loaded.config.logging);
  if (loaded.envOverrides.length > 0) log.info({ settings: loaded.envOverrides }, 'settings overridden from the environment');
  const daemon = new Daemon(loaded, log);
  const startup = new AbortController();
  let stopping: Promise<void> | null = null;

  const shutdown = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, 'shutting down');
    startup.abort();
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    stopping = daemon.stop().then(() => {
      log.info('stopped');
      log.flush();
      setTimeout(() => process.exit(0), 50).unref();
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      daemon.reload(loadConfig(file));
    } catch (err) {
      const detail = err instanceof ConfigError ? err.problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.path}: ${p.message}`) : [errorMessage(err)];
      log.error({ problems: detail }, 'reload refused: the new configuration is invalid; still running the old one');
    }
  });

  try {
    await daemon.start(startup.signal);
  } catch (err) {
    if (startup.signal.aborted) return; // shutdown() is already on its way
    log.fatal({ err: errorMessage(err) }, 'start-up failed');
    await daemon.stop();
    log.flush();
    exitOnError(err);
  }
}
