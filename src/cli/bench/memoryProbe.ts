import { readFileSync } from 'node:fs';
import { LocalSession } from '../../runtime/index.js';
import { decodeFeeds } from './recordedFeeds.js';

/**
 * A reference process for `outpost bench --memory`: plain Node, or Node with the pipeline's ORT sessions run on
 * the feeds the pipeline recorded (no sharp, no worker, no daemon), with or without ORT's CPU arena. Prints its
 * memory as one JSON line after running every recorded frame a few times.
 */
export interface ProbeRequest {
  /** Each stage's model file by stage name. */
  models: Record<string, string>;
  /** Feeds saved by `encodeFeeds`; absent for Node with the ORT library only. */
  feedsFile?: string;
  cpuArena: boolean;
  threads: number;
}

async function main(request: ProbeRequest): Promise<void> {
  if (request.feedsFile) {
    const runs = decodeFeeds(readFileSync(request.feedsFile, 'utf8'));
    const spec = { provider: 'cpu' as const, threads: request.threads, deviceId: 0, cacheDir: null, cpuArena: request.cpuArena };
    const sessions = new Map<string, LocalSession>();
    for (const [name, file] of Object.entries(request.models)) sessions.set(name, await LocalSession.create(file, spec));
    for (let i = 0; i < 3; i++) for (const [key, feeds] of runs) await sessions.get(key)?.run(structuredClone(feeds));
    runs.length = 0;
  }
  (globalThis as { gc?: () => void }).gc?.(); // the feeds are not part of what the sessions hold
  const m = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rssBytes: m.rss, heapBytes: m.heapTotal, externalBytes: m.external }) + '\n');
}

main(JSON.parse(process.argv[2] ?? '{}') as ProbeRequest).catch((err: unknown) => {
  process.stderr.write(`memory probe: ${String(err)}\n`);
  process.exit(1);
});
