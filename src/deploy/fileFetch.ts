import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { DurableFile } from '../durableFile.js';
import { join } from 'node:path';
import type { DeployFile } from './document.js';

const FETCH_TIMEOUT_MS = 10 * 60_000;

export class FetchRefused extends Error {
  constructor(
    readonly reason: 'sha256-mismatch' | 'too-large' | 'unreachable',
    message: string,
  ) {
    super(message);
  }
}

/**
 * A deployment's file, stored once under `dir/<sha256>`: fetched from its http(s) URL, never more than its
 * declared size read, hashed on the way, and kept only when the bytes are the ones signed for. A file already
 * stored (the same content) is not fetched again.
 */
export async function fetchPinned(f: DeployFile, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, f.sha256);
  if (existsSync(file)) return file;
  let res: Response;
  try {
    res = await fetch(f.url!, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  } catch (err) {
    throw new FetchRefused('unreachable', `${f.name}: cannot fetch ${f.url} (${(err as Error).message})`);
  }
  if (!res.ok || !res.body) throw new FetchRefused('unreachable', `${f.name}: ${f.url} answered ${res.status}`);
  const out = new DurableFile(file);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > f.size) throw new FetchRefused('too-large', `${f.name}: more than the ${f.size} bytes signed for`);
      hash.update(chunk);
      out.write(chunk);
    }
    const sha = hash.digest('hex');
    if (sha !== f.sha256 || size !== f.size)
      throw new FetchRefused(
        'sha256-mismatch',
        `${f.name}: ${size} bytes hashing to ${sha.slice(0, 12)}…, not the ${f.size} bytes of ${f.sha256.slice(0, 12)}… signed for`,
      );
  } catch (err) {
    out.abort();
    throw err;
  }
  out.commit();
  return file;
}
