import { createCipheriv, randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import nacl from 'tweetnacl';
import { median, rounded } from '../../benchMath.js';
import { EventBus, systemClock, type ComponentContext } from '../../core/index.js';
import { OutpostError } from '../../errors.js';
import { renderDemoFrames } from '../../camera/index.js';
import { configSchema, resolveConfig } from '../../config/index.js';
import { ItemSealer, SealedEnvelope, toB64 } from '../../crypto/index.js';
import { Collector, HttpTransport, Outbox, RESULT_TYPE, Uploader } from '../../upload/index.js';
import { exitOnError, positiveInt, runComponents } from '../common.js';
import { Progress } from '../progress.js';
import { benchTarget, configOption, emitReport, enginePipeline, repeatsOption, withReportFlags, type ReportFlags } from './shared.js';

export interface UploadBenchOptions extends ReportFlags {
  config?: string;
  repeats: number;
  /** items queued during the simulated outage */
  backlog: number;
}

/** `outpost bench upload`: what sealing and the outbox cost. */
export function uploadMode(bench: Command): Command {
  const cmd = bench
    .command('upload')
    .description('sealing MB/s against chacha20-poly1305, outbox enqueue+ack items/s, the drain rate after an outage')
    .addOption(configOption())
    .addOption(repeatsOption(5, 'runs of each sealing measurement (medians are reported)'))
    .option('--backlog <n>', 'items queued during the outage', positiveInt, 10_000);
  return withReportFlags(cmd).action((o: UploadBenchOptions) => benchUpload(o).catch(exitOnError));
}

async function benchUpload(o: UploadBenchOptions): Promise<void> {
  const { ctx, pipeline } = benchTarget(o.config);
  emitReport(o, await measureUpload(o, await medianInferMs(ctx, pipeline)));
}

/** Inference time of one frame through the config's pipeline (median of 8 demo frames): what sealing is compared with. */
async function medianInferMs(ctx: ComponentContext, name: string): Promise<number> {
  const { engine, set } = enginePipeline(ctx, name);
  return runComponents(ctx, [engine, set], async () => {
    const times: number[] = [];
    for (const f of await renderDemoFrames(8, 3)) times.push((await set.get(name).process(f)).timings.inferMs);
    return rounded(median(times));
  });
}

const SIZES = [1024, 100 * 1024];

/** items/s and MB/s of `fn` over `n` items of `size` bytes, the median of `repeats` runs. */
function rate(repeats: number, n: number, size: number, fn: () => void) {
  const runs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) fn();
    runs.push((n * 1000) / (performance.now() - t));
  }
  const itemsPerSecond = median(runs);
  return { itemsPerSecond: rounded(itemsPerSecond, 0), mbPerSecond: rounded((itemsPerSecond * size) / 1e6, 1), usPerItem: rounded(1e6 / itemsPerSecond, 1) };
}

/** Sealing (version 1: tweetnacl box with a cached shared key; version 2: an item's ephemeral key and signature) against Node's chacha20-poly1305, the machine's limit. */
function sealing(repeats: number) {
  const device = nacl.box.keyPair();
  const collector = nacl.box.keyPair();
  const env = new SealedEnvelope(device);
  const item = new ItemSealer(nacl.sign.keyPair(), collector.publicKey);
  const header = { device: 'bench', epoch: '0'.repeat(32), seq: 1, contentType: RESULT_TYPE };
  const key = randomBytes(32);
  return Object.fromEntries(
    SIZES.map((size) => {
      const payload = randomBytes(size);
      const n = size > 10_000 ? 200 : 5000;
      const tweetnacl = rate(repeats, n, size, () => env.seal(header, payload, collector.publicKey));
      const itemV2 = rate(repeats, n, size, () => item.seal(header, payload));
      const chacha = rate(repeats, n, size, () => {
        const c = createCipheriv('chacha20-poly1305', key, randomBytes(12), { authTagLength: 16 });
        c.update(payload);
        c.final();
        c.getAuthTag();
      });
      return [`${size / 1024}KB`, { tweetnacl, itemV2, nodeChacha20Poly1305: chacha, ratioToLimit: rounded(tweetnacl.mbPerSecond / chacha.mbPerSecond, 3) }];
    }),
  );
}

/** Enqueue (flushed to disk) then ack, one item at a time: the outbox's durable throughput. */
async function outboxRate(size: number, n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-outbox-'));
  const ob = Outbox.open(dir, { maxBytes: 1 << 30, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
  const payload = randomBytes(size);
  try {
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      const seq = await ob.enqueue(() => payload, Date.now());
      await ob.ack([seq!]);
    }
    return rounded((n * 1000) / (performance.now() - t), 0);
  } finally {
    await ob.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A backlog of `n` 1 KB items (a day's outage), then a collector on loopback: how fast the outbox empties. */
async function drain(n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-drain-'));
  const device = { sign: nacl.sign.keyPair(), box: nacl.box.keyPair() };
  const collectorKeys = { sign: nacl.sign.keyPair(), box: nacl.box.keyPair() };
  const log = pino({ level: 'silent' });
  const collector = new Collector(collectorKeys, [{ name: 'bench', sign: Buffer.from(device.sign.publicKey).toString('base64') }], join(dir, 'out'), log);
  const port = await collector.listen('127.0.0.1', 0);
  await fillBacklog(join(dir, 'outbox'), new ItemSealer(device.sign, collectorKeys.box.publicKey), n);
  const hq = { name: 'hq', box: toB64(collectorKeys.box.publicKey), sign: toB64(collectorKeys.sign.publicKey), roles: ['collector'] };
  const config = resolveConfig(
    configSchema.parse({ node: { stateDir: dir }, keyring: [hq], upload: { collector: { url: `http://127.0.0.1:${port}`, key: 'hq' } } }),
  );
  const ctx = { config, bus: new EventBus(log), log, clock: systemClock, stateDir: dir, registry: new Registry() };
  if (!config.upload) throw new OutpostError('OUTPOST_E_INTERNAL', 'the drain bench config lost its upload section');
  const up = new Uploader(ctx, config.upload, {
    deviceId: 'bench',
    keys: () => device,
    collector: { box: collectorKeys.box.publicKey, sign: collectorKeys.sign.publicKey },
    transport: new HttpTransport(`http://127.0.0.1:${port}`, 30_000),
  });
  const t = performance.now();
  await up.start();
  while ((up.status().upload as { pending: number }).pending > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t) / 1000;
  await up.stop();
  await collector.close();
  rmSync(dir, { recursive: true, force: true });
  return { items: n, seconds: rounded(seconds, 2), itemsPerSecond: rounded(n / seconds, 0) };
}

/** `n` sealed 1 KB results queued in the outbox at `dir`, as an outage leaves them. */
async function fillBacklog(dir: string, seal: ItemSealer, n: number): Promise<void> {
  const payload = Buffer.from(JSON.stringify({ output: { lines: [{ text: 'x'.repeat(980) }] } }));
  const ob = Outbox.open(dir, { maxBytes: 1 << 30, maxAgeMs: 3_600_000, whenFull: 'drop-oldest' });
  for (let i = 0; i < n; i++)
    await ob.enqueue((seq) => seal.seal({ device: 'bench', epoch: ob.epoch, seq, contentType: RESULT_TYPE, capturedAt: Date.now() }, payload), Date.now());
  await ob.close();
}

/**
 * `outpost bench upload`: what sealing and the outbox cost. Sealing MB/s and items/s against Node's
 * chacha20-poly1305 (the machine's limit); outbox enqueue+ack items/s with every item flushed to disk; the drain
 * rate of a 10,000-item backlog to a collector on loopback; and whether a 15 fps camera with 100 KB snapshots
 * fits (enqueue and drain rates above 15 items/s, sealing a small share of a frame's inference).
 */
async function measureUpload(opts: UploadBenchOptions, inferMsPerFrame: number | null) {
  const progress = new Progress('bench upload');
  progress.update(0, 4, 'sealing');
  const seal = sealing(opts.repeats);
  progress.update(1, 4, 'outbox enqueue + ack');
  const outbox = { '1KB': await outboxRate(1024, 500), '100KB': await outboxRate(100 * 1024, 200) };
  progress.update(2, 4, `draining a backlog of ${opts.backlog}`);
  const drained = await drain(opts.backlog);
  progress.done();
  const sealUs = (seal['100KB'] as { itemV2: { usPerItem: number } }).itemV2.usPerItem; // what uploads seal with
  return {
    kind: 'outpost-bench-upload',
    createdAt: new Date().toISOString(),
    sealing: seal,
    outboxEnqueueAckItemsPerSecond: outbox,
    drainAfterOutage: drained,
    camera15fps100KB: {
      needsItemsPerSecond: 15,
      outboxKeepsUp: outbox['100KB'] >= 15,
      sealMsPerSnapshot: rounded(sealUs / 1000, 3),
      inferMsPerFrame,
      sealShareOfInference: inferMsPerFrame ? rounded(sealUs / 1000 / inferMsPerFrame, 4) : null,
    },
  };
}
