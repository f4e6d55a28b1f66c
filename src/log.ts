import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

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
  const stderr = pino.destination({ dest: 2, sync: false });
  return pino({ level: opts.level, base: { pid: process.pid } }, toJournal() ? withSyslogPriority(stderr) : stderr);
}

/** An error for people on stderr; under journald each line carries priority 3 (err). */
export function writeError(text: string): void {
  const lines = text.replace(/\n$/, '').split('\n');
  process.stderr.write(`${(toJournal() ? lines.map((l) => `<3>${l}`) : lines).join('\n')}\n`);
}

/** Whether stderr is connected to journald (`$JOURNAL_STREAM` names its device and inode). */
function toJournal(): boolean {
  const stream = process.env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const st = fstatSync(2);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** pino level → syslog priority (sd-daemon(3) `<N>` prefix): journald stores it as PRIORITY and shows errors red. */
const PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

function withSyslogPriority(dest: DestinationStream & { flush?: (cb?: (err?: Error) => void) => void }): DestinationStream {
  return {
    write(line: string) {
      const level = Number(/^\{"level":(\d+)/.exec(line)?.[1] ?? 30);
      dest.write(`<${PRIORITY[level] ?? 6}>${line}`);
    },
    flush: (cb?: (err?: Error) => void) => dest.flush?.(cb),
  } as DestinationStream;
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
