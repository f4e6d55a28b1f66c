import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttLink } from '../mqtt/index.js';
import { CHUNK_BYTES, type DeployFile } from './document.js';
import { FetchRefused } from './fileFetch.js';

const WAIT_MS = 5 * 60_000;

/** `<base>/files/<sha256>/<index>`: where `outpost deploy create` publishes a file's chunks, retained. */
export const chunkTopic = (base: string, sha: string, index: number | '+') => `${base}/files/${sha}/${index}`;

/**
 * A deployment's file from the broker: each retained chunk checked against the sha256 the signed document gives
 * for its index before it is written (anyone may publish there; a wrong chunk is dropped, counted, and the right
 * one may still come), written at its place in a temporary file, the whole checked at the end and stored as
 * `dir/<sha256>`. Nothing is held in memory beyond one chunk.
 */
export function fetchChunks(link: MqttLink, owner: string, f: DeployFile, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, f.sha256);
  if (existsSync(file)) return Promise.resolve(file);
  const want = f.chunks!;
  const tmp = `${file}.partial`;
  const fd = openSync(tmp, 'w', 0o600);
  const have = new Set<number>();
  let dropped = 0;
  return new Promise<string>((resolve, reject) => {
    const end = (err: Error | null) => {
      clearTimeout(timer);
      link.off(owner);
      closeSync(fd);
      if (err) {
        unlinkSync(tmp);
        return reject(err);
      }
      const sha = createHash('sha256').update(readFileSync(tmp)).digest('hex');
      if (sha !== f.sha256) {
        unlinkSync(tmp);
        return reject(new FetchRefused('sha256-mismatch', `${f.name}: its chunks hash to ${sha.slice(0, 12)}…, not ${f.sha256.slice(0, 12)}…`));
      }
      renameSync(tmp, file);
      resolve(file);
    };
    const timer = setTimeout(
      () => end(new FetchRefused('unreachable', `${f.name}: ${have.size} of ${want.length} chunks in ${WAIT_MS / 1000} s (${dropped} wrong ones dropped)`)),
      WAIT_MS,
    );
    link.subscribe(chunkTopic(link.base, f.sha256, '+'), owner, (topic, payload) => {
      const index = Number(topic.slice(topic.lastIndexOf('/') + 1));
      if (!Number.isInteger(index) || index < 0 || index >= want.length || have.has(index)) return;
      if (payload.length > CHUNK_BYTES || createHash('sha256').update(payload).digest('hex') !== want[index]) return void dropped++;
      writeSync(fd, payload, 0, payload.length, index * CHUNK_BYTES);
      have.add(index);
      if (have.size < want.length) return;
      fsyncSync(fd);
      end(null);
    });
  });
}
