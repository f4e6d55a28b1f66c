import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EventBus, systemClock, type ComponentContext } from '../../core/index.js';
import { configSchema, resolveConfig } from '../../config/index.js';
import { OutpostError } from '../../errors.js';
import { toB64, type NodeKeys } from '../../crypto/index.js';
import { MqttLink } from '../../mqtt/index.js';
import type { Result } from '../../types.js';
import { ItemSealer } from '../../crypto/index.js';
import { HttpTransport, MqttTransport, Outbox, RESULT_TYPE, Uploader, type AcceptAnswer, type Transport } from '../../upload/index.js';

export interface SimDeviceOptions {
  name: string;
  /** its state folder (outbox, bdSeq) */
  dir: string;
  keys: NodeKeys;
  collector: { box: Uint8Array; sign: Uint8Array };
  /** HTTP collectors, failed over between; or an MQTT broker */
  via: { urls: string[] } | { broker: string; base: string };
  batchItems?: number;
  timeoutSeconds?: number;
  retry?: { initialMs: number; maxMs: number };
}

/** Results waiting to be sealed, at most: past it a simulated device holds its next result back (never drops one). */
const PREPARING_MAX = 32;

/**
 * A device without a camera, for `bench collect` and the collector tests: the real uploader, outbox and transport
 * (sealed envelopes, signed acks, backoff), fed results on its event bus as a pipeline would.
 */
export class SimDevice {
  /** each batch's time from send to a checked answer, ms */
  readonly ackMs: number[] = [];
  private readonly bus = new EventBus(pino({ level: 'silent' }));
  private readonly uploader: Uploader;
  private readonly link: MqttLink | null;
  private produced = 0;

  constructor(readonly opts: SimDeviceOptions) {
    const log = pino({ level: 'silent' });
    const via = opts.via;
    const hq = { name: 'hq', sign: toB64(opts.collector.sign), box: toB64(opts.collector.box), roles: ['collector'] };
    const parsed = configSchema.parse({
      node: { name: opts.name, stateDir: opts.dir },
      keyring: [hq],
      upload: {
        collector: 'urls' in via ? { urls: via.urls, key: 'hq' } : { key: 'hq' },
        transport: 'urls' in via ? 'http' : 'mqtt',
        delivery: { batchItems: opts.batchItems ?? 50, timeoutSeconds: opts.timeoutSeconds ?? 5, retry: opts.retry ?? { initialMs: 200, maxMs: 2000 } },
      },
      ...('broker' in via ? { telemetry: { mqtt: { url: via.broker, baseTopic: via.base, reconnect: { initialMs: 200, maxMs: 2000 } } } } : {}),
    });
    const config = resolveConfig(parsed);
    const [up, mqtt] = [config.upload, config.telemetry.mqtt];
    if (!up || ('broker' in via && !mqtt)) throw new OutpostError('OUTPOST_E_INTERNAL', 'the simulated device lost its upload or broker settings');
    const ctx: ComponentContext = { config, bus: this.bus, log, clock: systemClock, stateDir: opts.dir, registry: new Registry() };
    const timeout = up.delivery.timeoutSeconds * 1000;
    this.link = mqtt ? new MqttLink(ctx, { mqtt, deviceId: opts.name }) : null;
    const inner = this.link ? new MqttTransport(this.link, timeout) : new HttpTransport((via as { urls: string[] }).urls, timeout);
    this.uploader = new Uploader(ctx, up, { deviceId: opts.name, keys: () => opts.keys, collector: opts.collector, transport: this.timed(inner) });
  }

  /** Its line in the collector's trust file. */
  get trustLine(): string {
    return `- { name: ${this.opts.name}, sign: ${toB64(this.opts.keys.sign.publicKey)} }`;
  }

  /** Before start: `n` sealed results put straight into its outbox (a backlog, as after an outage). */
  async prefill(n: number): Promise<void> {
    const ob = Outbox.open(join(this.opts.dir, 'outbox'), { maxBytes: 1 << 30, maxAgeMs: 86_400_000, whenFull: 'drop-oldest' });
    const sealer = new ItemSealer(this.opts.keys.sign, this.opts.collector.box);
    try {
      for (let i = 0; i < n; i++) {
        const payload = Buffer.from(JSON.stringify(this.result(++this.produced)));
        const header = {
          device: this.opts.name,
          contentType: RESULT_TYPE,
          capturedAt: Date.now(),
          camera: 'door',
          parts: [{ type: 'application/json', bytes: payload.length }],
        };
        await ob.enqueue((seq) => sealer.seal({ ...header, epoch: ob.epoch, seq }, payload), Date.now());
      }
    } finally {
      await ob.close();
    }
  }

  async start(): Promise<void> {
    await this.link?.start();
    await this.uploader.start();
  }

  /** One result, as a pipeline would emit it; false (nothing emitted) while the uploader is still sealing many. */
  produce(): boolean {
    if (this.upload.preparing >= PREPARING_MAX) return false;
    const result = this.result(++this.produced);
    // results without frames (upload.frames.include is off): the frame is an empty stand-in
    this.bus.emit('result', {
      result,
      frame: {
        id: result.frameId,
        camera: result.camera,
        seq: this.produced,
        capturedAt: result.capturedAt,
        data: Buffer.alloc(0),
        encoding: 'jpeg',
        width: 0,
        height: 0,
      },
    });
    return true;
  }

  private result(n: number): Result {
    return {
      frameId: `f${n}`,
      camera: n % 2 ? 'door' : 'yard',
      capturedAt: Date.now(),
      finishedAt: Date.now(),
      model: 'sim',
      variant: 'fp32',
      provider: 'cpu',
      placement: 'local',
      timings: { totalMs: 0 } as Result['timings'],
      output: { lines: [{ text: `PLATE ${n}`, score: 0.9, box: [0, 0, 10, 10] }] },
    };
  }

  get sent(): number {
    return this.produced;
  }

  get upload(): { pending: number; preparing: number; delivered: number; failures: number; dropped: Record<string, number> } {
    return this.uploader.status().upload as never;
  }

  /** Everything produced has been sealed and acked. */
  get drained(): boolean {
    const u = this.upload;
    return u.pending === 0 && u.preparing === 0 && u.delivered >= this.produced;
  }

  async stop(): Promise<void> {
    await this.uploader.stop();
    await this.link?.stop();
  }

  /** The transport, timing each batch from send to the answer the uploader accepted. */
  private timed(inner: Transport): Transport {
    return {
      name: inner.name,
      send: async (batch: Buffer, id: string, accept: AcceptAnswer, signal: AbortSignal) => {
        const t = performance.now();
        const answer = await inner.send(batch, id, accept, signal);
        this.ackMs.push(performance.now() - t);
        return answer;
      },
      close: () => inner.close(),
    };
  }
}
