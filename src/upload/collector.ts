import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { EnvelopeError, ITEM_VERSION, ItemOpener, sealedBy, type NodeKeys } from '../crypto/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { isSafeTopic, type MqttClient } from '../mqtt/index.js';
import { BodyLimiter, closeServer, createBoundedServer, readBody, refuse, type BodyRefusal } from '../net/index.js';
import { RefusalBudget } from '../refusalBudget.js';
import { createHash } from 'node:crypto';
import { signAnswer, type SignedAnswer } from './acks.js';
import { BATCH_SENDER_BYTES, BatchError, batchSender, decodeBatch, type BatchAnswer, type ItemHeader } from './batch.js';
import { StoreRefusal, type StoreLimits } from './itemStore.js';
import { FolderStore, StoreBusy, type CollectorStore, type ItemOutcome, type OpenedItem } from './collectorStore.js';
import { logRejection } from '../lastResort.js';
import { refusalsOf } from '../refusals.js';

export interface TrustedDevice {
  /** the device id its items carry */
  name: string;
  /** base64 Ed25519 key it signs its items with (in the clear in each envelope) */
  sign: string;
}

/** Why an item (or a whole request) was refused, and the HTTP status a request refused for it gets (refusals.ts). */
export const COLLECTOR_REFUSALS = refusalsOf([
  'garbage',
  'truncated',
  'version',
  'bad-header',
  'cannot-open',
  'unknown-key',
  'bad-signature',
  'wrong-sender',
  'too-large',
  'busy',
  'too-many',
  'aborted',
  'bad-payload',
  'bad-seq',
  'bad-drop-range',
  'quota',
  'store-failed',
  'store-busy',
]);
export type CollectorRefusal = keyof typeof COLLECTOR_REFUSALS;

/** Seconds a device is asked to wait (HTTP Retry-After) when the store is busy. */
const RETRY_AFTER_S = 5;

/**
 * `outpost collect`: opens sealed items (envelope version 2) from trusted devices and stores each once, as
 * OUT/<device>/<epoch>/<seq>.json (+ .jpg). A sender
 * not in the trust list is refused by a map lookup on the key in the clear, before any key agreement. Anything
 * it cannot open, not signed by its sender, or claiming to be another device is refused with a reason (and an
 * HTTP status when the whole request is refused), counted, and never stops the good items of the same batch.
 * The answer to a batch with a trusted sender is signed with the collector's Ed25519 key and binds the device,
 * epoch, batch id, acked and refused (acks.ts); strangers get an unsigned refusal that costs no signature.
 * It keeps no state outside OUT: several collectors can share one folder.
 */
export class Collector {
  readonly registry = new Registry();
  private readonly trusted = new Map<string, string>(); // Ed25519 key → device name
  private readonly opener: ItemOpener;
  private readonly signKey: Uint8Array;
  private readonly store: CollectorStore;
  private readonly refused: Counter<'reason'>;
  private readonly stored: Counter<'outcome'>;
  private readonly connectionsRefused: Counter<'reason'>;
  /** batches read at once, in all and per device address: each may be `maxBodyBytes` */
  private readonly bodies = new BodyLimiter(8, 2);
  /** every refusal is counted (/metrics); a flood of them writes a bounded number of lines */
  private readonly logBudget = new RefusalBudget(
    (suppressed, byReason, seconds) => this.log.warn({ suppressed, byReason }, `suppressed ${suppressed} refusals in ${seconds} s (all counted in metrics)`),
    Date.now,
    10,
  );
  private server: Server | null = null;

  constructor(
    keys: NodeKeys,
    trust: readonly TrustedDevice[],
    /** the folder OUT of the folder store, or another store (PostgreSQL) */
    store: string | CollectorStore,
    private readonly log: Logger,
    private readonly maxBodyBytes = 32 << 20,
    storeLimits: Partial<StoreLimits> = {},
  ) {
    for (const t of trust) this.trusted.set(t.sign, t.name);
    this.opener = new ItemOpener(keys.box);
    this.signKey = keys.sign.secretKey;
    this.store = typeof store === 'string' ? new FolderStore(store, storeLimits) : store;
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
    for (const r of Object.keys(COLLECTOR_REFUSALS)) this.refused.inc({ reason: r }, 0);
  }

  /**
   * One batch: each envelope checked, opened and stored on its own; the answer lists what was acked and refused.
   * `batch` is the id the device gave it (echoed in the signed answer); `expectDevice` the device a topic names.
   */
  async take(body: Buffer, batch: string | null, expectDevice?: string): Promise<{ status: number; answer: SignedAnswer | BatchAnswer }> {
    if (body.length > this.maxBodyBytes) return this.refuseAll('too-large', `${body.length} bytes; at most ${this.maxBodyBytes}`);
    let envelopes: Buffer[];
    try {
      envelopes = decodeBatch(body);
    } catch (err) {
      return this.refuseAll(err instanceof BatchError && /cut short/.test(err.message) ? 'truncated' : 'garbage', errorMessage(err));
    }
    const whose: { device?: string; epoch?: string } = {};
    const checked = envelopes.map((e) => this.takeOne(e, whose, expectDevice));
    // no trusted sender: every item is refused already
    const outcomes = whose.device ? await this.storeAll(whose.device, checked) : (checked as Refused[]);
    const answer: BatchAnswer = { acked: [], refused: [] };
    outcomes.forEach((r, index) => {
      if ('reason' in r) {
        this.refused.inc({ reason: r.reason });
        answer.refused.push({ index, ...r });
      } else answer.acked.push(r.seq);
    });
    if (answer.refused.length > 0 && this.logBudget.take(answer.refused[0].reason))
      this.log.warn({ refused: answer.refused.slice(0, 3), acked: answer.acked.length }, 'items refused');
    const reasons = new Set(answer.refused.map((r) => r.reason));
    const status = answer.acked.length === 0 && reasons.size === 1 ? COLLECTOR_REFUSALS[answer.refused[0].reason as CollectorRefusal] : 200;
    // only a batch from a trusted sender is worth a signature
    if (!whose.device || batch === null) return { status, answer };
    return { status, answer: signAnswer({ device: whose.device, epoch: whose.epoch ?? '', batch, ...answer }, this.signKey) };
  }

  /** The opened items of a batch into the store at once (one transaction in PostgreSQL); each answered once it is durable. */
  private async storeAll(device: string, checked: Checked[]): Promise<(Refused | Taken)[]> {
    const opened = checked.filter((c): c is Opened => 'item' in c);
    if (opened.length === 0) return checked;
    let outcomes: ItemOutcome[];
    try {
      outcomes = await this.store.putAll(
        device,
        opened.map((o) => o.item),
      );
    } catch (err) {
      const reason = err instanceof StoreBusy ? 'store-busy' : 'store-failed';
      if (this.logBudget.take(reason)) this.log.warn({ err: errorMessage(err) }, 'the store took nothing of a batch; answered busy');
      return checked.map((c) => ('item' in c ? refusal(reason, errorMessage(err), c.seq) : c));
    }
    const byItem = new Map(opened.map((o, i) => [o, outcomes[i]]));
    return checked.map((c) => {
      if (!('item' in c)) return c;
      const outcome = byItem.get(c)!;
      if (!(outcome instanceof Error)) {
        this.stored.inc({ outcome });
        return { seq: c.seq };
      }
      if (outcome instanceof StoreRefusal) return refusal(outcome.reason, outcome.message, c.seq);
      const ours = (outcome as NodeJS.ErrnoException).code !== undefined;
      return refusal(ours ? 'store-failed' : 'bad-payload', errorMessage(outcome), c.seq);
    });
  }

  /** `whose`: the device and epoch of the batch, set by its first trusted item; the others must match. */
  private takeOne(e: Buffer, whose: { device?: string; epoch?: string }, expectDevice?: string): Checked {
    const sender = sealedBy(e);
    if (sender === null) return refusal('garbage', 'not a sealed envelope (no OPSE magic)');
    if (e[4] !== ITEM_VERSION) return refusal('version', `envelope version ${e[4]}; upload items are version ${ITEM_VERSION}: upgrade the device`);
    const device = this.trusted.get(sender);
    if (!device) return refusal('unknown-key', `sender key ${sender.slice(0, 12)}… is not in the trust list`);
    if ((whose.device ??= device) !== device || (expectDevice && expectDevice !== device))
      return refusal('wrong-sender', `an item of ${device} in a batch of ${expectDevice ?? whose.device}`);
    let opened;
    try {
      opened = this.opener.open<ItemHeader>(e);
    } catch (err) {
      return refusal(err instanceof EnvelopeError ? err.reason : 'garbage', errorMessage(err));
    }
    const h = opened.header;
    if (typeof h.contentType !== 'string' || typeof h.epoch !== 'string' || !/^[0-9a-f]{32}$/.test(h.epoch))
      return refusal('bad-header', 'the sealed header has no epoch or content type');
    const seq = Number.isSafeInteger(h.seq) ? h.seq : undefined; // an absurd seq is refused by the store, not echoed
    if (h.device !== device) return refusal('wrong-sender', `signed by ${device}'s key but says it is ${String(h.device).slice(0, 70)}`, seq);
    if ((whose.epoch ??= h.epoch) !== h.epoch) return refusal('bad-header', `epoch ${h.epoch} in a batch of epoch ${whose.epoch}`, seq);
    if (seq === undefined) return refusal('bad-seq', `${device}: seq ${String(h.seq).slice(0, 30)} is not an integer`);
    return { seq, item: { header: h, payload: opened.payload, envelopeSha256: createHash('sha256').update(e).digest() } };
  }

  private refuseAll(reason: CollectorRefusal, message: string) {
    this.refused.inc({ reason });
    if (this.logBudget.take(reason)) this.log.warn({ reason, message }, 'request refused');
    return { status: COLLECTOR_REFUSALS[reason], answer: { acked: [], refused: [{ index: -1, reason, message }] } };
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
      const answered = readBody(req, route, this.bodies).then(async (read) => {
        if (!read.ok) {
          const { answer } = this.refuseAll(read.reason as CollectorRefusal, read.message);
          return refuse(res, read.status, JSON.stringify(answer));
        }
        const { status, answer } = await this.take(read.body, batchId(req.headers['x-outpost-batch']));
        const busy = status === COLLECTOR_REFUSALS['store-busy'] ? { 'retry-after': String(RETRY_AFTER_S) } : {};
        res.writeHead(status, { 'content-type': 'application/json', ...busy }).end(JSON.stringify(answer));
      });
      answered.catch(logRejection(this.log, 'answering a batch'));
    } else if (req.method === 'GET' && path === '/metrics') {
      const metrics = this.registry.metrics().then((m) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(m));
      metrics.catch(logRejection(this.log, 'serving metrics'));
    } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'POST /v1/items or GET /metrics' }));
  }

  /** A batch whose first envelope is not sealed by a trusted device is refused before the rest of it is read. */
  private gate(prefix: Buffer): BodyRefusal | null {
    // a body shorter than the prefix is all here already: take() says what is wrong with it, item by item
    if (prefix.length < BATCH_SENDER_BYTES) return null;
    const first = batchSender(prefix);
    if (first === 'garbage') return { reason: 'garbage', status: COLLECTOR_REFUSALS.garbage, message: 'not an Outpost batch of sealed envelopes' };
    if (first === null) return null;
    if (prefix[12 + 4] !== ITEM_VERSION)
      return {
        reason: 'version',
        status: COLLECTOR_REFUSALS.version,
        message: `envelope version ${prefix[16]}; upload items are version ${ITEM_VERSION}: upgrade the device`,
      };
    if (this.trusted.has(first)) return null;
    return { reason: 'unknown-key', status: COLLECTOR_REFUSALS['unknown-key'], message: `sender key ${first.slice(0, 12)}… is not in the trust list` };
  }

  /** Takes batches published to `<base>/<device>/upload` and answers each on `<base>/<device>/upload/ack`. */
  async fromBroker(client: MqttClient, base: string, share?: string): Promise<void> {
    client.on('message', (topic, payload, packet) => {
      const m = topic.startsWith(`${base}/`) ? topic.slice(base.length + 1).split('/') : [];
      if (m.length !== 2 || m[1] !== 'upload' || !isSafeTopic(`${base}/${m[0]}/upload/ack`)) return;
      const batch = batchId(packet.properties?.correlationData ? Buffer.from(packet.properties.correlationData).toString('utf8') : undefined);
      const answered = this.take(payload, batch, m[0]).then(({ answer }) => {
        // anyone on the broker can publish here: a batch with no trusted sender gets no answer (HTTP gets a status)
        if ('sig' in answer) client.publish(`${base}/${m[0]}/upload/ack`, JSON.stringify(answer), { qos: 1 });
      });
      answered.catch(logRejection(this.log, 'answering a batch from the broker'));
    });
    // with a share group, the broker hands each batch to one collector of the group; a dead one's share moves to the rest
    await client.subscribeAsync(share ? `$share/${share}/${base}/+/upload` : `${base}/+/upload`, { qos: 1 });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    await closeServer(server);
    await this.store.close();
  }
}

type Refused = { seq?: number; reason: CollectorRefusal | string; message: string };
type Taken = { seq: number };
type Opened = { seq: number; item: OpenedItem };
type Checked = Refused | Opened;

const refusal = (reason: CollectorRefusal | string, message: string, seq?: number): Refused => ({ ...(seq === undefined ? {} : { seq }), reason, message });

/** The id a device gave its batch: hex, at most 64 digits (anything else gets no signed answer). */
function batchId(v: unknown): string | null {
  return typeof v === 'string' && /^[0-9a-f]{1,64}$/.test(v) ? v : null;
}
