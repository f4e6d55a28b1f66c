import { randomBytes } from 'node:crypto';
import { Backoff } from '../backoff.js';
import { RefusalBudget } from '../refusalBudget.js';
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import type { OutpostConfig, UploadConfig } from '../config/index.js';
import { ItemSealer, type NodeKeys } from '../crypto/index.js';
import { errorMessage } from '../errors.js';
import { ResultSelector } from '../resultSelector.js';
import type { Frame, Result } from '../types.js';
import { hideRegions, type HideMethod, type PixelBox } from '../vision/index.js';
import { ACK_REFUSALS, checkAnswer, type AckRefusal, type SentBatch } from './acks.js';
import { DROPPED_TYPE, encodeBatch, RESULT_TYPE, type BatchAnswer, type ItemHeader } from './batch.js';
import { resealLegacy } from './legacyItems.js';
import { DROP_REASONS, Outbox } from './outbox.js';
import type { Transport } from './transports.js';
import { guarded } from '../guarded.js';

export interface UploaderDeps {
  deviceId: string;
  /** this node's keys, read when uploads start (a node without keys cannot seal: start fails and says so) */
  keys: () => NodeKeys;
  /** the collector's keyring entry: items are sealed to its X25519 key, its answers verified with its Ed25519 key */
  collector: { box: Uint8Array; sign: Uint8Array };
  transport: Transport;
  /** face boxes in frame pixels, from the configured detector (absent: no face detection) */
  faces?: (frame: Frame) => Promise<PixelBox[]>;
  random?: () => number;
}

const SWEEP_MS = 60_000;
/** Results waiting for their frame to be anonymised and sealed; past this, new ones are dropped (counted). */
const MAX_PREPARING = 64;
/** Bytes of frames held for those results (boards have 512 MB); past this, a new result goes without its frame (counted). */
const MAX_PREPARING_FRAME_BYTES = 16 << 20;
/** Detect-and-hide rounds per frame before giving up on it. */
const FACE_PASSES = 3;

/**
 * Turns selected results (and, if asked, their frames, anonymised before anything touches the disk) into sealed
 * items in the outbox, and delivers them: oldest first, in batches, at most `bandwidthKBps` on average, with
 * exponential backoff and jitter while the collector is away. An item leaves the outbox only when an answer
 * signed by the collector's key, for that batch, device and epoch, acknowledged it; any other answer is counted
 * and deletes nothing. Drops (full, expired) are counted and told to the collector in a sealed notice, so a gap in
 * its seqs is either explained or a loss.
 */
export class Uploader implements Component {
  readonly name = 'upload';
  private cfg: UploadConfig;
  private outbox: Outbox | null = null;
  private sealer: ItemSealer | null = null;
  private readonly select: ResultSelector;
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private enqueueing: Promise<unknown> = Promise.resolve();
  private readonly counts = {
    delivered: 0,
    failures: 0,
    refusedByCollector: 0,
    anonymiseFailed: 0,
    /** results that went without their frame: the frames held for the results before them filled MAX_PREPARING_FRAME_BYTES */
    frameMissing: 0,
    /** results selected and not yet in the outbox (anonymising, sealing) */
    preparing: 0,
    /** the bytes of the frames those results hold */
    heldFrameBytes: 0,
    busyDropped: 0,
    /** answers that did not check out (forged, for another batch, device or epoch), and acked seqs not in the batch */
    acksRefused: Object.fromEntries(ACK_REFUSALS.map((r) => [r, 0])) as Record<AckRefusal, number>,
    lastError: null as string | null,
    lastDeliveryAt: null as number | null,
  };
  /** refused answers are all counted (status, metrics); one is logged per 10 s, the rest in a summary */
  private readonly refusalLog = new RefusalBudget(
    (suppressed, byReason, seconds) => this.ctx.log.warn({ suppressed, byReason }, `suppressed ${suppressed} refused upload answers in ${seconds} s`),
    () => this.ctx.clock.now(),
    1,
  );
  private metrics: { delivered: Counter; failures: Counter; anonymise: Counter; acksRefused: Counter<'reason'> } | null = null;

  constructor(
    private readonly ctx: ComponentContext,
    cfg: Readonly<UploadConfig>,
    private readonly deps: UploaderDeps,
  ) {
    this.cfg = cfg;
    this.select = new ResultSelector(this.cfg.select);
  }

  async start(): Promise<void> {
    const keys = this.deps.keys();
    this.sealer = new ItemSealer(keys.sign, this.deps.collector.box);
    const o = this.cfg.outbox;
    this.outbox = Outbox.open(join(this.ctx.stateDir, 'outbox'), { maxBytes: o.maxBytes, maxAgeMs: o.maxAgeHours * 3_600_000, whenFull: o.whenFull });
    if (this.outbox.legacy) {
      const m = await this.outbox.migrate(resealLegacy(keys, this.deps.collector.box, this.sealer, this.outbox.epoch));
      this.ctx.log.warn(
        { ...m, epoch: this.outbox.epoch },
        'an outbox from before epochs: its items resealed (version 2) and renumbered from 1 in a new epoch',
      );
    }
    this.registerMetrics();
    this.ctx.bus.on('result', this.name, ({ result: r, frame }) => {
      if (!this.select.select(r)) return;
      if (this.counts.preparing >= MAX_PREPARING) return void this.counts.busyDropped++; // before a seq is spent: no gap
      const held = this.cfg.frames.include ? this.hold(frame) : null;
      this.counts.preparing++;
      // one after another: seqs follow the order results came in; the frame is let go once its item is written
      this.enqueueing = this.enqueueing
        .then(() => this.enqueue(r, held))
        .catch((err) => this.ctx.log.error({ err: errorMessage(err) }, 'could not put a result in the outbox'))
        .finally(() => {
          this.counts.preparing--;
          this.counts.heldFrameBytes -= held?.data.length ?? 0;
        });
    });
    this.sweeper = setInterval(
      guarded(
        () => this.outbox?.sweep(this.ctx.clock.now()),
        (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'outbox sweep failed; trying again on the next tick'),
      ),
      SWEEP_MS,
    );
    this.sweeper.unref();
    await this.outbox.sweep(this.ctx.clock.now());
    this.loop = this.deliverForever();
    this.ctx.log.info({ pending: this.outbox.pending, epoch: this.outbox.epoch, transport: this.deps.transport.name }, 'uploads started');
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.abort.abort();
    await this.loop;
    await this.enqueueing;
    this.deps.transport.close();
    await this.outbox?.close();
    this.outbox = null;
  }

  reload(config: Readonly<OutpostConfig>): void {
    if (!config.upload) return;
    this.cfg = config.upload;
    this.select.configure(this.cfg.select);
  }

  status(): Record<string, unknown> {
    const ob = this.outbox;
    const { delivered, failures, refusedByCollector, anonymiseFailed, frameMissing, preparing, busyDropped, acksRefused, lastError, lastDeliveryAt } =
      this.counts;
    return {
      upload: {
        transport: this.deps.transport.name,
        epoch: ob?.epoch ?? null,
        pending: ob?.pending ?? 0,
        preparing,
        heldFrameBytes: this.counts.heldFrameBytes,
        bytes: ob?.bytes ?? 0,
        dropped: { ...(ob?.dropped() ?? {}), busy: busyDropped },
        delivered,
        failures,
        refusedByCollector,
        acksRefused: { ...acksRefused },
        anonymiseFailed,
        frameMissing,
        lastError,
        lastDeliveryAt: lastDeliveryAt ? new Date(lastDeliveryAt).toISOString() : null,
      },
    };
  }

  /** A selected result's frame, held until its item is written; null (counted) when the frames already held fill their bound. */
  private hold(frame: Frame): Frame | null {
    if (this.counts.heldFrameBytes + frame.data.length > MAX_PREPARING_FRAME_BYTES) {
      this.counts.frameMissing++;
      return null;
    }
    this.counts.heldFrameBytes += frame.data.length;
    return frame;
  }

  /** The result (JSON) and, when frames are included, its frame anonymised: one sealed item. */
  private async enqueue(r: Result, frame: Frame | null): Promise<void> {
    const json = Buffer.from(
      JSON.stringify({
        frameId: r.frameId,
        camera: r.camera,
        capturedAt: r.capturedAt,
        model: r.model,
        variant: r.variant,
        provider: r.provider,
        placement: r.placement,
        output: r.output,
      }),
    );
    const jpeg = frame ? await this.anonymised(r, frame) : null;
    const parts = [{ type: 'application/json', bytes: json.length }, ...(jpeg ? [{ type: 'image/jpeg', bytes: jpeg.length }] : [])];
    const header: Omit<ItemHeader, 'seq' | 'epoch'> = {
      device: this.deps.deviceId,
      contentType: RESULT_TYPE,
      capturedAt: r.capturedAt,
      camera: r.camera,
      frameId: r.frameId,
      parts,
    };
    await this.put(header, jpeg ? Buffer.concat([json, jpeg]) : json);
  }

  private async put(header: Omit<ItemHeader, 'seq' | 'epoch'>, payload: Buffer, clearsUnreported = false): Promise<number | null> {
    const ob = this.outbox!;
    const seq = await ob.enqueue((s) => this.sealer!.seal({ ...header, epoch: ob.epoch, seq: s }, payload), this.ctx.clock.now(), { clearsUnreported });
    this.wake?.();
    return seq;
  }

  /** The frame a result came from, with faces and fixed regions hidden; null when that fails (counted). */
  private async anonymised(r: Result, frame: Frame): Promise<Buffer | null> {
    try {
      const a = this.cfg.anonymise;
      const withFaces = a.faces && this.deps.faces ? await this.hideFaces(frame, a.faces.method) : frame.data;
      const regions = a.regions.map(([x0, y0, x1, y1]) => [x0 * frame.width, y0 * frame.height, x1 * frame.width, y1 * frame.height] as const);
      const { maxWidth, quality } = this.cfg.frames;
      return await hideRegions(withFaces, regions, a.method, { maxWidth, quality });
    } catch (err) {
      this.counts.anonymiseFailed++;
      this.metrics?.anonymise.inc();
      this.ctx.log.warn({ camera: r.camera, frame: r.frameId, err: errorMessage(err) }, 'anonymising the frame failed: the result goes without it');
      return null;
    }
  }

  /**
   * Hides every face the detector finds, then looks again: faces it missed next to the ones it found (a crowd)
   * often show once those are hidden, and a blur the detector still reads as a face gets filled. A frame that
   * still has a face after the last pass is not uploaded.
   */
  private async hideFaces(frame: Frame, method: HideMethod): Promise<Buffer> {
    let data = frame.data;
    for (let pass = 0; pass < FACE_PASSES; pass++) {
      const faces = await this.deps.faces!({ ...frame, data });
      if (faces.length === 0) return data;
      // a face found again after the first pass (a blurred blob the detector still reads) is filled instead
      data = await hideRegions(data, faces, pass === 0 ? method : 'fill', { maxWidth: frame.width, quality: 95 });
    }
    if ((await this.deps.faces!({ ...frame, data })).length > 0) throw new Error(`faces still found after ${FACE_PASSES} passes`);
    return data;
  }

  private async deliverForever(): Promise<void> {
    const d = () => this.cfg.delivery;
    const backoff = new Backoff(d().retry, this.deps.random);
    while (!this.abort.signal.aborted) {
      const ob = this.outbox!;
      if (ob.unreported().length > 0)
        await this.put(
          { device: this.deps.deviceId, contentType: DROPPED_TYPE, capturedAt: this.ctx.clock.now() },
          Buffer.from(JSON.stringify({ ranges: ob.unreported() })),
          true,
        );
      const batch = ob.oldest(d().batchItems, d().batchBytes);
      if (batch.length === 0) {
        await this.idle(1000);
        continue;
      }
      const body = encodeBatch(batch.map((i) => i.envelope));
      const sent: SentBatch = { id: randomBytes(16).toString('hex'), device: this.deps.deviceId, epoch: ob.epoch, seqs: new Set(batch.map((i) => i.seq)) };
      const started = performance.now();
      try {
        const answer = await this.deps.transport.send(body, sent.id, (raw) => this.accept(raw, sent), this.abort.signal);
        const removed = await ob.ack(answer.acked);
        this.counts.delivered += removed;
        this.metrics?.delivered.inc(removed);
        this.counts.refusedByCollector += answer.refused.length;
        if (answer.refused.length > 0)
          throw new Error(`the collector refused ${answer.refused.length} items: ${answer.refused[0].reason} (${answer.refused[0].message})`);
        this.delivered();
        backoff.reset();
        await this.pace(body.length, performance.now() - started);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.counts.failures++;
        this.metrics?.failures.inc();
        this.counts.lastError = errorMessage(err);
        const retryInMs = backoff.next();
        this.ctx.log.warn({ err: this.counts.lastError, pending: ob.pending, retryInMs }, 'upload failed; retrying');
        await this.idle(retryInMs, false);
      }
    }
  }

  /** An answer off the network, checked against the batch sent; anything else is counted and deletes nothing. */
  private accept(raw: unknown, sent: SentBatch): BatchAnswer | null {
    const v = checkAnswer(raw, sent, this.deps.collector.sign);
    if (v.ok && v.strays === 0) return v.answer;
    const [reason, n, detail] = v.ok ? (['not-in-batch', v.strays, 'acked seqs that were not in the batch'] as const) : [v.reason, 1, v.detail];
    this.counts.acksRefused[reason] += n;
    this.metrics?.acksRefused.inc({ reason }, n);
    if (this.refusalLog.take(reason))
      this.ctx.log.warn({ reason, detail, batch: sent.id, refused: { ...this.counts.acksRefused } }, 'an upload answer was refused; nothing removed for it');
    return v.ok ? v.answer : null;
  }

  /** A batch went through: a failure before it is over, and said so once. */
  private delivered(): void {
    this.counts.lastDeliveryAt = this.ctx.clock.now();
    if (this.counts.lastError === null) return;
    this.ctx.log.info({ was: this.counts.lastError, pending: this.outbox?.pending ?? 0 }, 'collector reachable again');
    this.counts.lastError = null;
  }

  /** Keeps the average rate under bandwidthKBps: a batch of N bytes is followed by N / rate of quiet. */
  private async pace(bytes: number, tookMs: number): Promise<void> {
    const kbps = this.cfg.delivery.bandwidthKBps;
    if (kbps > 0) await this.idle(Math.max(0, (bytes / (kbps * 1024)) * 1000 - tookMs), false);
  }

  /** Waits `ms`; a new item cuts the wait short only when `forItems` (never a backoff or the bandwidth pause); stop always does. */
  private idle(ms: number, forItems = true): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done, { once: true });
      if (forItems) this.wake = done;
      if (this.abort.signal.aborted) done();
    });
  }

  private registerMetrics(): void {
    const registers = [this.ctx.registry];
    const ob = () => this.outbox;
    this.metrics = {
      delivered: new Counter({ name: 'outpost_upload_delivered_total', help: 'Items that left the outbox on a signed answer from the collector', registers }),
      failures: new Counter({ name: 'outpost_upload_failures_total', help: 'Batches that did not get through (retried)', registers }),
      anonymise: new Counter({ name: 'outpost_upload_anonymise_failed_total', help: 'Frames not uploaded because anonymising them failed', registers }),
      acksRefused: new Counter({
        name: 'outpost_upload_acks_refused_total',
        help: "Collector answers that deleted nothing (not signed by the collector's key, for another batch, device or epoch), and acked seqs not in the batch",
        labelNames: ['reason'],
        registers,
      }),
    };
    for (const reason of ACK_REFUSALS) this.metrics.acksRefused.inc({ reason }, 0);
    new Gauge({
      name: 'outpost_upload_pending',
      help: 'Items waiting in the outbox',
      registers,
      collect() {
        this.set(ob()?.pending ?? 0);
      },
    });
    new Gauge({
      name: 'outpost_upload_dropped',
      help: 'Items dropped from the outbox since it was created, by reason (full, expired, refused-new, unreadable)',
      labelNames: ['reason'],
      registers,
      collect() {
        const d = ob()?.dropped();
        for (const r of DROP_REASONS) this.set({ reason: r }, d?.[r] ?? 0);
      },
    });
  }
}
