import { ConfigError, formatProblem, loadConfig } from '../config/index.js';
import { Daemon } from '../daemon.js';
import { recoverDeployment } from '../deploy/index.js';
import { asOutpostError, errorMessage } from '../errors.js';
import { installLastResort, logRejection } from '../lastResort.js';
import { createLogger, flushLog, type Logger } from '../log.js';
import { SystemdNotifier } from '../service/index.js';
import { configPath, exitOnError } from './common.js';

/** CLOCK_MONOTONIC in µs, as systemd wants it with RELOADING=1 (Node's hrtime is that clock on Linux). */
const monotonicUsec = () => (process.hrtime.bigint() / 1000n).toString();

/** The daemon's own stop budget; systemd's TimeoutStopSec must be above it. */
export const SHUTDOWN_GRACE_MS = 9_000;

/** `outpost run`: the daemon. SIGTERM/SIGINT stop it within 10 s (exit 0); SIGHUP reloads the config. */
export async function runCommand(opts: { config?: string }): Promise<void> {
  const file = configPath(opts.config);
  // a deployment cut short ends on the old config or the new before anything starts (docs/deployments.md)
  const first = loadConfig(file);
  const loaded = recoverDeployment(first.file, first.config.node.stateDir) ? loadConfig(file) : first;
  const log = createLogger(loaded.config.logging);
  const exit = exitAfterFlush(log);
  installLastResort(log, exit);
  if (loaded.envOverrides.length > 0) log.info({ settings: loaded.envOverrides }, 'settings overridden from the environment');
  const daemon = new Daemon(loaded, log);
  daemon.onFatal = (err) => {
    const code = restartableExit(err);
    const stopFailed = logRejection(log, 'stopping after a failed restart');
    daemon.stop().then(
      () => exit(code),
      (stopErr: unknown) => (stopFailed(stopErr), exit(code)),
    );
  };
  const systemd = SystemdNotifier.forProcess(log);
  const startup = new AbortController();
  let stopping = false;

  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    systemd.send({ STOPPING: 1, STATUS: `stopping (${signal})` });
    startup.abort();
    setTimeout(() => {
      log.error('shutdown took too long; exiting');
      exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
    daemon
      .stop()
      .then(async () => {
        log.info('stopped');
        await systemd.close();
        await flushLog(log);
        process.exit(0);
      })
      .catch(logRejection(log, 'shutdown'));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    systemd.send({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec(), STATUS: 'reloading the configuration' });
    const done = (status: string) => systemd.send({ READY: 1, STATUS: status });
    try {
      daemon.reload(loadConfig(file)).then(
        () => done('running (configuration reloaded)'),
        (err: unknown) => (log.error({ err: errorMessage(err) }, 'reload failed'), done('running (reload failed; see the log)')),
      );
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [errorMessage(err)];
      log.error({ problems }, 'reload refused: the new configuration is invalid; still running the old one');
      done('running the old configuration (the new one is invalid)');
    }
  });

  try {
    await daemon.start(startup.signal);
  } catch (err) {
    if (stopping) return; // shutdown() is already on its way
    stopping = true;
    await daemon.stop(); // nothing that started may keep running (or logging results) after the failure is reported
    const e = asOutpostError(err);
    log.fatal({ code: e.code, err: e.message }, 'start-up failed');
    systemd.send({ STATUS: `start-up failed: ${e.message}` });
    await systemd.close();
    await flushLog(log);
    exitOnError(e);
  }
}

/** Flushes the log, then exits (the last lines must reach journald). */
function exitAfterFlush(log: Logger): (code: number) => void {
  const exit = (code: number) => process.exit(code);
  return (code) => {
    flushLog(log).then(
      () => exit(code),
      () => exit(code),
    );
  };
}

/** A failure's exit code, but never 78: systemd's RestartPreventExitStatus would keep a node down for a fault a restart may cure. */
function restartableExit(err: unknown): number {
  const code = asOutpostError(err).exitCode;
  return code === 78 ? 1 : code;
}
