/**
 * The catalogue of errors a user can act on. Each code maps to one CLI exit code; messages say what to do.
 */
export type OutpostErrorCode = 'OUTPOST_E_CONFIG' | 'OUTPOST_E_MODEL' | 'OUTPOST_E_PROVIDER' | 'OUTPOST_E_INPUT' | 'OUTPOST_E_CAMERA';

/** sysexits.h: EX_CONFIG for configuration, EX_DATAERR for bad input, EX_UNAVAILABLE otherwise. */
const EXIT_CODES: Record<OutpostErrorCode, number> = {
  OUTPOST_E_CONFIG: 78,
  OUTPOST_E_MODEL: 65,
  OUTPOST_E_PROVIDER: 69,
  OUTPOST_E_INPUT: 65,
  OUTPOST_E_CAMERA: 69,
};

export class OutpostError extends Error {
  readonly code: OutpostErrorCode;
  constructor(code: OutpostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutpostError';
    this.code = code;
  }
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
