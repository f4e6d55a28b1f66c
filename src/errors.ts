/**
 * The catalogue of errors a user can act on (fastify's lib/errors.js is the model): each code has one CLI exit
 * code (sysexits.h where one fits) and a line saying what it means; messages say what to do. The README's
 * exit-code table is tested against this one.
 */
export const ERROR_CATALOGUE = {
  OUTPOST_E_REFUSED: { exit: 1, means: 'the other side refused: a command without the right key, role or freshness (the reason says which)' },
  OUTPOST_E_USAGE: { exit: 64, means: 'a command-line flag or argument is wrong' },
  OUTPOST_E_INPUT: { exit: 65, means: 'an input image, folder or file is unreadable, empty or not what the command expects' },
  OUTPOST_E_MODEL: { exit: 65, means: 'a model file is missing, truncated, not ONNX, or uses an operator ONNX Runtime cannot run' },
  OUTPOST_E_NOINPUT: { exit: 66, means: 'a file or folder named on the command line does not exist' },
  OUTPOST_E_PROVIDER: { exit: 69, means: 'no execution provider creates a session on this machine' },
  OUTPOST_E_CAMERA: { exit: 69, means: 'a camera is unreachable or delivered no frame' },
  OUTPOST_E_UNREACHABLE: { exit: 69, means: 'a broker, device, collector or peer did not answer in time' },
  OUTPOST_E_INTERNAL: { exit: 70, means: 'a bug in Outpost: the message carries a stack trace to report' },
  OUTPOST_E_STATE: { exit: 73, means: 'the state folder (node.stateDir) cannot be created or written, or its disk is full' },
  OUTPOST_E_IO: { exit: 74, means: 'a file or folder named on the command line cannot be read or written' },
  OUTPOST_E_PORT: { exit: 75, means: 'a port Outpost must listen on is taken; stop the other process or choose another port' },
  OUTPOST_E_LOCKED: { exit: 75, means: 'another outpost daemon runs on this state folder (node.stateDir); the message names its PID' },
  OUTPOST_E_KEYS: { exit: 77, means: "this node's key files are missing, unreadable, or readable by others" },
  OUTPOST_E_CONFIG: { exit: 78, means: 'the configuration is invalid: one FILE:LINE:COL: path: message line per problem' },
} as const;

export type OutpostErrorCode = keyof typeof ERROR_CATALOGUE;

export function isOutpostErrorCode(code: unknown): code is OutpostErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}

export class OutpostError extends Error {
  readonly code: OutpostErrorCode;
  constructor(code: OutpostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutpostError';
    // a code from outside the catalogue (a worker's raw errno) would map to no exit code: a failed start exiting 0
    this.code = isOutpostErrorCode(code) ? code : 'OUTPOST_E_INTERNAL';
  }
  get exitCode(): number {
    return ERROR_CATALOGUE[this.code].exit;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A Node system error (fs, net): it has an errno code such as EACCES and the call that failed. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code!);
}

const ERRNO_HINTS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the disk',
  EDQUOT: 'disk quota exceeded',
  EBUSY: 'busy (a mount point or the current folder?)',
  EEXIST: 'already exists',
  ENOTEMPTY: 'the folder is not empty',
  EADDRINUSE: 'address already in use',
};

/** "cannot open /x/y (EACCES: permission denied)": a system error said once, without its stack. */
export function describeSystemError(err: NodeJS.ErrnoException & { code: string }): string {
  const what = err.path ? `${err.syscall ?? 'use'} ${err.path}` : (err.syscall ?? 'do that');
  return `cannot ${what} (${err.code}: ${ERRNO_HINTS[err.code] ?? err.message.replace(/^E[A-Z0-9]+: /, '')})`;
}

/** Keeps an OutpostError; turns a system error into `code` with a one-line message; anything else is a bug. */
export function asOutpostError(err: unknown, code: OutpostErrorCode = 'OUTPOST_E_IO'): OutpostError {
  if (err instanceof OutpostError) return err;
  if (isSystemError(err)) return new OutpostError(code, describeSystemError(err), { cause: err });
  return new OutpostError('OUTPOST_E_INTERNAL', err instanceof Error ? (err.stack ?? err.message) : String(err), { cause: err });
}
