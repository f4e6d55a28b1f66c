import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { OutpostError, errorMessage } from '../errors.js';
import type { MqttLink } from '../mqtt/index.js';
import type { BatchAnswer } from './batch.js';

/** Takes an answer off the network (parsed JSON, hostile) and returns it only once it checks out; counts the rest. */
export type AcceptAnswer = (raw: unknown) => BatchAnswer | null;

/** How a batch of sealed items reaches the collector, and what it answered. */
export interface Transport {
  readonly name: string;
  /** Sends batch `id`; resolves with the first answer `accept` takes, rejects on failure, timeout or abort. */
  send(batch: Buffer, id: string, accept: AcceptAnswer, signal: AbortSignal): Promise<BatchAnswer>;
  close(): void;
}

/** After failing over, a device goes back to its first collector this long after it left it (the list is its preference). */
const BACK_TO_FIRST_MS = 5 * 60_000;

/** An answer is a small JSON document: more than this is not read. */
const MAX_ANSWER_BYTES = 1 << 20;

function parseAnswer(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
}

/** What a refused or unverified answer claims, for the log only (nothing is believed from it). */
function claimed(raw: unknown): string {
  const r = (raw as { refused?: { reason?: unknown }[] } | null)?.refused?.[0]?.reason;
  return typeof r === 'string' ? `, says ${r.slice(0, 40)}` : '';
}

/**
 * HTTP POST to `outpost collect` on a keep-alive connection; the batch id goes in `x-outpost-batch`. Given several
 * collectors, it stays with the one that answered last (going back to the first one BACK_TO_FIRST_MS after it left
 * it); a batch that one cannot take (unreachable, no signed answer) goes to the next, and only when none answers
 * does the send fail (the uploader backs off). A signed
 * answer, "busy" included, is an answer: the collectors share one store, so the device backs off instead.
 */
export class HttpTransport implements Transport {
  readonly name = 'http';
  private readonly targets: { url: URL; agent: Agent }[];
  private current = 0;
  private leftFirstAt = 0;

  constructor(
    bases: string | readonly string[],
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.targets = (typeof bases === 'string' ? [bases] : bases).map((base) => {
      const url = new URL('/v1/items', base);
      const agent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new Agent({ keepAlive: true, maxSockets: 1 });
      return { url, agent };
    });
    if (this.targets.length === 0) throw new OutpostError('OUTPOST_E_CONFIG', 'no collector url: set upload.collector.url or urls');
  }

  async send(batch: Buffer, id: string, accept: AcceptAnswer, signal: AbortSignal): Promise<BatchAnswer> {
    const failures: string[] = [];
    if (this.current !== 0 && this.now() - this.leftFirstAt >= BACK_TO_FIRST_MS) this.current = 0; // a restarted first collector gets its devices back
    for (let tried = 0; tried < this.targets.length; tried++) {
      const target = this.targets[this.current];
      try {
        return await this.post(target, batch, id, accept, signal);
      } catch (err) {
        if (signal.aborted || this.targets.length === 1) throw err;
        failures.push(errorMessage(err));
        if (this.current === 0) this.leftFirstAt = this.now();
        this.current = (this.current + 1) % this.targets.length;
      }
    }
    throw new OutpostError('OUTPOST_E_UNREACHABLE', `no collector took the batch: ${failures.join('; ')}`);
  }

  private post(target: { url: URL; agent: Agent }, batch: Buffer, id: string, accept: AcceptAnswer, signal: AbortSignal): Promise<BatchAnswer> {
    const request = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const unreachable = (why: string) => new OutpostError('OUTPOST_E_UNREACHABLE', `the collector at ${target.url.origin} ${why}`);
    return new Promise((resolve, reject) => {
      const req = request(
        target.url,
        {
          method: 'POST',
          agent: target.agent,
          signal,
          timeout: this.timeoutMs,
          headers: { 'content-type': 'application/vnd.outpost.batch', 'content-length': batch.length, 'x-outpost-batch': id },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`an answer of more than ${MAX_ANSWER_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            const raw = parseAnswer(Buffer.concat(chunks));
            const answer = accept(raw);
            if (answer) resolve(answer);
            else reject(unreachable(`answered HTTP ${res.statusCode} without an answer signed by its key${claimed(raw)}; nothing removed`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(unreachable(`cannot be reached (${errorMessage(err)})`)));
      req.end(batch);
    });
  }

  close(): void {
    for (const t of this.targets) t.agent.destroy();
  }
}

/**
 * QoS 1 publish to `<base>/<device>/upload` for sites where only the broker is reachable. The broker's PUBACK
 * is not the collector's, and anyone on the broker can publish to `<base>/<device>/upload/ack`: only an answer
 * that `accept` takes (signed by the collector, for this batch) ends the wait; forged ones are counted and the
 * wait goes on until the real answer or the timeout.
 */
export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  private readonly waiting = new Map<string, (raw: unknown) => void>();

  constructor(
    private readonly link: MqttLink,
    private readonly timeoutMs: number,
  ) {
    link.subscribe(link.topic('upload', 'ack'), 'upload', (_t, payload) => {
      if (payload.length > MAX_ANSWER_BYTES || this.waiting.size === 0) return; // nothing is waiting: a late answer
      const raw = parseAnswer(payload);
      const batch = (raw as { batch?: unknown } | null)?.batch;
      // an answer to no batch of ours still goes to a waiting one, which refuses and counts it
      (this.waiting.get(typeof batch === 'string' ? batch : '') ?? this.waiting.values().next().value!)(raw);
    });
  }

  send(batch: Buffer, id: string, accept: AcceptAnswer, signal: AbortSignal): Promise<BatchAnswer> {
    return new Promise((resolve, reject) => {
      // one place that settles: every path clears the timer, the waiter and the abort listener
      const settle = (err: Error | null, answer?: BatchAnswer) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(answer!);
      };
      const onAbort = () => settle(new Error('stopped'));
      const timer = setTimeout(
        () => settle(new OutpostError('OUTPOST_E_UNREACHABLE', `no collector answered batch ${id} within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.waiting.set(id, (raw) => {
        const answer = accept(raw);
        if (answer) settle(null, answer);
      });
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) return onAbort();
      this.link
        .publishConfirmed(this.link.topic('upload'), batch, { properties: { correlationData: Buffer.from(id), userProperties: { batch: id } } })
        .catch((err: unknown) => settle(err instanceof Error ? err : new Error(errorMessage(err))));
    });
  }

  close(): void {
    this.link.off('upload');
  }
}
