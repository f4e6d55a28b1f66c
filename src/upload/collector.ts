import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { EnvelopeError, SealedEnvelope, type NodeKeys } from '../crypto/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { isSafeTopic, type MqttClient } from '../mqtt/index.js';
import { BodyLimiter, createBoundedServer, rateLimitedLog, readBody, refuse, type BodyRefusal } from '../net/index.js';
import { BATCH_SENDER_BYTES, BatchError, batchSender, decodeBatch, type BatchAnswer, type ItemHeader } from './batch.js';
import { ItemStore } from './itemStore.js';

export interface TrustedDevice {
  /** the device id its items carry */
  name: string;
  /** base64 X25519 key it seals with */
  box: string;
}

/** Why an item (or a whole request) was refused, and the HTTP status a request refused for that reason gets. */
export const REFUSALS = {
  garbage: 415,
  truncated: 400,
  version: 400,
  'bad-header': 400,
  'cannot-open': 422,
  'unknown-sender': 403,
  'wrong-device': 409,
  'too-large': 413,
  /** more bodies are being read than the collector takes at once, in all or from this address */
  busy: 503,
  'too-many': 429,
  /** the device went away before its batch ended */
  aborted: 400,
  'bad-payload': 422,
  /** our disk, not the item: the device keeps it and tries again */
  'store-failed': 503,
} as const;
export type CollectorRefusal = keyof typeof REFUSALS;

/**
 * `outpost collect`: opens sealed items from trusted devices and stores each once, as OUT/<device>/<seq>.json
 * (+ .jpg). Anything it cannot open, from a sender it does not trust, or claiming to be another device is refused
 * with a reason (and an HTTP status when the whole request is refused), counted, and never stops the good
 * items of the same batch. It keeps no state outside OUT: several collectors can share one folder.
 */
export class Collector {
  readonly registry = new Registry();
  private readonly trusted = new Map<string, string>(); // box key → device name
  private readonly envelope: SealedEnvelope;
  private readonly store: ItemStore;
  private readonly refused: Counter<'reason'>;
  private readonly stored: Counter<'outcome'>;
  private readonly connectionsRefused: Counter<'reason'>;
  /** batches read at once, in all and per device address: each may be `maxBodyBytes` */
  private readonly bodies = new BodyLimiter(8, 2);
  private readonly logRefusal = rateLimitedLog((reason: string, message: string, suppressed: number) =>
    this.log.warn({ reason, message, ...(suppressed ? { suppressed } : {}) }, 'request refused'),
  );
  private server: Server | null = null;

  constructor(
    keys: NodeKeys,
    trust: readonly TrustedDevice[],
    out: string,
    private readonly log: Logger,
    private readonly maxBodyBytes = 32 << 20,
  ) {
    for (const t of trust) this.trusted.set(t.box, t.name);
    this.envelope = new SealedEnvelope(keys.box);
    this.store = new ItemStore(out);
    this.refused = new Counter({
      name: 'outpost_collector_refused_total',
      help: 'Items or requests refused, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.stored = new Counter({
      name: 'outpost_collector_items_total',
      help: 'Items acknowledged: stored, or already stored',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.connectionsRefused = new Counter({
      name: 'outpost_collector_connections_refused_total',
      help: 'Connections closed unserved, by reason (too many, too slow, garbage)',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    for (const r of Object.keys(REFUSALS)) this.refused.inc({ reason: r }, 0);
  }

  /** One batch: each envelope opened, checked and stored on its own; the answer lists what was acked and refused. */
  take(body: Buffer, expectDevice?: string): { status: number; answer: BatchAnswer } {
    if (body.length > this.maxBodyBytes) return this.refuseAll('too-large', `${body.length} bytes; at most ${this.maxBodyBytes}`);
    let envelopes: Buffer[];
    try {
      envelopes = decodeBatch(body);
    } catch (err) {
      return this.refuseAll(err instanceof BatchError && /cut short/.test(err.message) ? 'truncated' : 'garbage', errorMessage(err));
    }
    const answer: BatchAnswer = { acked: [], refused: [] };
    envelopes.forEach((e, index) => {
      const r = this.takeOne(e, expectDevice);
      if ('seq' in r && !('reason' in r)) answer.acked.push(r.seq);
      else {
        this.refused.inc({ reason: r.reason });
        answer.refused.push({ index, ...r });
      }
    });
    if (answer.refused.length > 0) this.log.warn({ refused: answer.refused.slice(0, 3), acked: answer.acked.length }, 'items refused');
    const reasons = new Set(answer.refused.map((r) => r.reason));
    const status = answer.acked.length === 0 && reasons.size === 1 ? REFUSALS[answer.refused[0].reason as CollectorRefusal] : 200;
    return { status, answer };
  }

  private takeOne(e: Buffer, expectDevice?: string): { seq: number } | { seq?: number; reason: CollectorRefusal; message: string } {
    let opened;
    try {
      opened = this.envelope.open<ItemHeader>(e);
    } catch (err) {
      return { reason: err instanceof EnvelopeError ? err.reason : 'garbage', message: errorMessage(err) };
    }
    const device = this.trusted.get(opened.sender);
    if (!device) return { reason: 'unknown-sender', message: `sender key ${opened.sender.slice(0, 12)}… is not in the trust list` };
    const h = opened.header;
    if (!Number.isInteger(h.seq) || h.seq < 1 || typeof h.contentType !== 'string')
      return { reason: 'bad-header', message: 'the sealed header has no seq or content type' };
    if (h.device !== device || (expectDevice && expectDevice !== device))
      return { seq: h.seq, reason: 'wrong-device', message: `sealed by ${device}'s key but says it is ${h.device}` };
    try {
      this.stored.inc({ outcome: this.store.put(device, h, opened.payload) });
    } catch (err) {
      const ours = (err as NodeJS.ErrnoException).code !== undefined;
      return { seq: h.seq, reason: ours ? 'store-failed' : 'bad-payload', message: errorMessage(err) };
    }
    return { seq: h.seq };
  }

  private refuseAll(reason: CollectorRefusal, message: string) {
    this.refused.inc({ reason });
    this.logRefusal(reason, message);
    return { status: REFUSALS[reason], answer: { acked: [], refused: [{ index: -1, reason, message }] } };
  }

  async listen(host: string, port: number): Promise<number> {
    const server = createBoundedServer((req, res) => this.serve(req, res), {
      limits: { requestTimeoutMs: 60_000 },
      refused: (reason) => this.connectionsRefused.inc({ reason }),
      warn: (err) => this.log.warn({ err: errorMessage(err) }, 'collector server error (refused, counted)'),
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new OutpostError('OUTPOST_E_PORT', `cannot listen on ${host}:${port} (${errorMessage(err)}); choose another --listen`)),
      );
      server.listen(port, host, resolve);
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'POST' && path === '/v1/items') {
      const route = { maxBytes: this.maxBodyBytes, prefixBytes: BATCH_SENDER_BYTES, gate: (prefix: Buffer) => this.gate(prefix) };
      void readBody(req, route, this.bodies).then((read) => {
        if (!read.ok) {
          const { answer } = this.refuseAll(read.reason as CollectorRefusal, read.message);
          return refuse(res, read.status, JSON.stringify(answer));
        }
        const { status, answer } = this.take(read.body);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    } else if (req.method === 'GET' && path === '/metrics') {
      void this.registry.metrics().then((m) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(m));
    } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'POST /v1/items or GET /metrics' }));
  }

  /** A batch whose first envelope is not sealed by a trusted device is refused before the rest of it is read. */
  private gate(prefix: Buffer): BodyRefusal | null {
    // a body shorter than the prefix is all here already: take() says what is wrong with it, item by item
    if (prefix.length < BATCH_SENDER_BYTES) return null;
    const first = batchSender(prefix);
    if (first === 'garbage') return { reason: 'garbage', status: REFUSALS.garbage, message: 'not an Outpost batch of sealed envelopes' };
    if (first === null || this.trusted.has(first)) return null;
    return { reason: 'unknown-sender', status: REFUSALS['unknown-sender'], message: `sender key ${first.slice(0, 12)}… is not in the trust list` };
  }

  /** Takes batches published to `<base>/<device>/upload` and answers each on `<base>/<device>/upload/ack`. */
  async fromBroker(client: MqttClient, base: string): Promise<void> {
    client.on('message', (topic, payload, packet) => {
      const m = topic.startsWith(`${base}/`) ? topic.slice(base.length + 1).split('/') : [];
      if (m.length !== 2 || m[1] !== 'upload' || !isSafeTopic(`${base}/${m[0]}/upload/ack`)) return;
      const batch = packet.properties?.correlationData ? Buffer.from(packet.properties.correlationData).toString('utf8') : null;
      const { answer } = this.take(payload, m[0]);
      client.publish(`${base}/${m[0]}/upload/ack`, JSON.stringify({ batch, ...answer }), { qos: 1 });
    });
    await client.subscribeAsync(`${base}/+/upload`, { qos: 1 });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
