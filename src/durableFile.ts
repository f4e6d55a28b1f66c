import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * A file written so that a crash or power loss leaves the old content or the new, never half: a temporary file
 * beside it (random name, O_EXCL|O_NOFOLLOW) takes the bytes; `commit` fsyncs it, renames it into place and
 * fsyncs the folder; `abort` removes it. Until `commit`, `file` is untouched.
 */
export class DurableFile {
  private readonly tmp: string;
  private fd: number | null;

  constructor(
    readonly file: string,
    mode = 0o600,
  ) {
    this.tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}`);
    this.fd = openSync(this.tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  }

  write(data: string | Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.file}: written after commit or abort`);
    if (typeof data === 'string') writeSync(this.fd, data);
    else writeSync(this.fd, data);
  }

  commit(): void {
    if (this.fd === null) throw new Error(`${this.file}: committed after commit or abort`);
    try {
      fsyncSync(this.fd);
    } catch (err) {
      this.abort();
      throw err;
    }
    closeSync(this.fd);
    this.fd = null;
    renameSync(this.tmp, this.file);
    syncFolder(dirname(this.file));
  }

  /** Drops what was written; `file` keeps its old content. */
  abort(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    unlinkSync(this.tmp);
  }
}

/** All of `data` under `file`, durably (see DurableFile). */
export function writeDurable(file: string, data: string | Buffer, mode = 0o600): void {
  const out = new DurableFile(file, mode);
  try {
    out.write(data);
  } catch (err) {
    out.abort();
    throw err;
  }
  out.commit();
}

function syncFolder(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
