import { readFileSync } from 'node:fs';
import { writeDurable } from '../durableFile.js';
import type { Freshness, ReplayGuard } from './replayGuard.js';

/** The newest message run per signer: its issued-at, and the nonces run at that same millisecond. */
interface Mark {
  issuedAt: number;
  nonces: string[];
}

const MAX_SIGNERS = 4096;
const MAX_NONCES_AT_ONE_MS = 16;

/**
 * Replay state that survives restarts and SIGKILL: per signer, the newest issued-at it ran (a high-water mark),
 * so a captured message is refused forever, and an older one after a newer one (a reordering) too. Written with
 * fsync and rename before `admit` returns, so a message never acts before it is remembered. Only messages whose
 * signature holds reach it, so it holds one small entry per operator key.
 */
export class ReplayLedger implements ReplayGuard {
  private readonly marks = new Map<string, Mark>();
  /** Messages issued before this are refused: set when the file was unreadable, so nothing it held can be replayed. */
  private floor = 0;

  constructor(
    private readonly file: string,
    private readonly windowMs: number,
  ) {}

  /** Reads the file. Returns a problem to log when it was unreadable (then everything issued until now + window is refused). */
  load(now: number): string | null {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // nothing ever ran
      return this.lost(now, (err as Error).message);
    }
    try {
      const parsed = JSON.parse(text) as { v?: unknown; floor?: unknown; signers?: unknown };
      if (parsed.v !== 1 || typeof parsed.floor !== 'number' || typeof parsed.signers !== 'object' || parsed.signers === null)
        throw new Error('not a v1 ledger');
      this.floor = parsed.floor;
      for (const [signer, mark] of Object.entries(parsed.signers as Record<string, Mark>).slice(0, MAX_SIGNERS)) {
        if (!Number.isFinite(mark?.issuedAt) || !Array.isArray(mark.nonces)) throw new Error(`bad entry for ${signer}`);
        this.marks.set(signer, { issuedAt: mark.issuedAt, nonces: mark.nonces.filter((n) => typeof n === 'string').slice(0, MAX_NONCES_AT_ONE_MS) });
      }
      return null;
    } catch (err) {
      this.marks.clear();
      return this.lost(now, (err as Error).message);
    }
  }

  admit(signer: string, issuedAt: number, nonce: string, _now: number): Freshness {
    if (issuedAt < this.floor) return 'out-of-order';
    const mark = this.marks.get(signer);
    if (mark && issuedAt < mark.issuedAt) return 'out-of-order';
    if (mark && issuedAt === mark.issuedAt && mark.nonces.includes(nonce)) return 'replayed';
    if (mark && issuedAt === mark.issuedAt && mark.nonces.length >= MAX_NONCES_AT_ONE_MS) return 'out-of-order';
    const next: Mark = mark && issuedAt === mark.issuedAt ? { issuedAt, nonces: [...mark.nonces, nonce] } : { issuedAt, nonces: [nonce] };
    this.marks.delete(signer); // re-inserted last: the oldest signer is first when the map must shrink
    this.marks.set(signer, next);
    if (this.marks.size > MAX_SIGNERS) this.marks.delete(this.marks.keys().next().value!);
    try {
      this.persist();
    } catch (err) {
      if (mark) this.marks.set(signer, mark);
      else this.marks.delete(signer);
      throw new Error(`cannot record replay state in ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    return 'fresh';
  }

  private lost(now: number, why: string): string {
    this.floor = now + this.windowMs;
    return `${this.file} is unreadable (${why}); refusing commands issued before ${new Date(this.floor).toISOString()} so none it held can be replayed`;
  }

  /** The old state or the new, never half (temp file, fsync, rename, fsync of the folder). */
  private persist(): void {
    writeDurable(this.file, JSON.stringify({ v: 1, floor: this.floor, signers: Object.fromEntries(this.marks) }));
  }
}
