import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  /** 'auto' is pretty on a TTY and JSON otherwise (journald). */
  format: 'auto' | 'json' | 'pretty';
}

/** Logs go to stderr so that CLI commands can keep stdout for their results (`infer`, `--json`). */
export function createLogger(opts: LoggerOptions): Logger {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stderr.isTTY === true);
  if (pretty) {
    return pino({
      level: opts.level,
      transport: { target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level: opts.level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/** Waits (at most `ms`) until what the logger buffered is written: before process.exit, so the last lines reach journald. */
export function flushLog(log: Logger, ms = 1000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
