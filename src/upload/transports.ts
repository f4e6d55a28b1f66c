import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { OutpostError, errorMessage } from '../errors.js';
import type { MqttLink } from '../mqtt/index.js';
import type { BatchAnswer } from './batch.js';

/** How a batch of sealed items reaches the collector, and what it answered. */
export interface Transport {
  readonly name: string;
  send(batch: Buffer, signal: AbortSignal): Promise<BatchAnswer>;
  close(): void;
}

/** HTTP POST to `outpost collect` on a keep-alive connection. */
export class HttpTransport implements Transport {
  readonly name = 'http';
  private readonly agent: Agent;
  private readonly url: URL;

  constructor(
    base: string,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL('/v1/items', base);
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new Agent({ keepAlive: true, maxSockets: 1 });
  }

  send(batch: Buffer, signal: AbortSignal): Promise<BatchAnswer> {
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          signal,
          timeout: this.timeoutMs,
          headers: { 'content-type': 'application/vnd.outpost.batch', 'content-length': batch.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as BatchAnswer;
              if (!Array.isArray(body.acked)) throw new Error(`HTTP ${res.statusCode}`);
              resolve(body);
            } catch (err) {
              reject(
                new OutpostError(
                  'OUTPOST_E_UNREACHABLE',
                  `the collector at ${this.url.origin} answered HTTP ${res.statusCode} without a batch answer (${errorMessage(err)})`,
                ),
              );
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new OutpostError('OUTPOST_E_UNREACHABLE', `cannot reach the collector at ${this.url.origin} (${errorMessage(err)})`)));
      req.end(batch);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * QoS 1 publish to `<base>/<device>/upload` for sites where only the broker is reachable. The broker's PUBACK
 * is not the collector's: the collector answers on `<base>/<device>/upload/ack` with the batch id, and only
 * that answer removes items from the outbox.
 */
export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  private readonly waiting = new Map<string, (a: BatchAnswer) => void>();

  constructor(
    private readonly link: MqttLink,
    private readonly timeoutMs: number,
  ) {
    link.subscribe(link.topic('upload', 'ack'), 'upload', (_t, payload) => {
      try {
        const a = JSON.parse(payload.toString('utf8')) as BatchAnswer & { batch: string };
        this.waiting.get(a.batch)?.(a);
      } catch {
        /* not an answer of ours */
      }
    });
  }

  async send(batch: Buffer, signal: AbortSignal): Promise<BatchAnswer> {
    const id = randomBytes(8).toString('hex');
    const answered = new Promise<BatchAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () => (this.waiting.delete(id), reject(new OutpostError('OUTPOST_E_UNREACHABLE', `no collector answered batch ${id} within ${this.timeoutMs} ms`))),
        this.timeoutMs,
      );
      signal.addEventListener('abort', () => (clearTimeout(timer), this.waiting.delete(id), reject(new Error('stopped'))), { once: true });
      this.waiting.set(id, (a) => (clearTimeout(timer), this.waiting.delete(id), resolve(a)));
    });
    await this.link.publishConfirmed(this.link.topic('upload'), batch, { properties: { correlationData: Buffer.from(id), userProperties: { batch: id } } });
    return answered;
  }

  close(): void {
    this.link.off('upload');
  }
}
