import type { IncomingMessage, ServerResponse } from 'node:http';
import { REFUSAL_STATUS, type Refusal } from '../refusals.js';

/** Why a body was not read to the end (its HTTP status in refusals.ts). */
export type BodyRefusalReason = Extract<Refusal, 'too-large' | 'busy' | 'too-many' | 'aborted'>;

export interface BodyRefusal {
  reason: BodyRefusalReason | string;
  status: number;
  message: string;
}

/** How one route reads its body. */
export interface BodyRoute {
  /** the most bytes the route takes: a larger Content-Length is refused before a byte is read */
  maxBytes: number;
  /** bytes read first and shown to `gate` (the whole body when it is shorter) */
  prefixBytes?: number;
  /** looks at the prefix (who sent it) and refuses, or returns null to read the rest */
  gate?: (prefix: Buffer) => BodyRefusal | null;
}

export type BodyResult = { ok: true; body: Buffer } | ({ ok: false } & BodyRefusal);

const refusal = (reason: BodyRefusalReason, message: string): { ok: false } & BodyRefusal => ({ ok: false, reason, status: REFUSAL_STATUS[reason], message });

/**
 * Bodies being read at once, in all and per remote address: a request past either bound is refused before its
 * body is read (503 / 429; the server counts it with its other refusals).
 */
export class BodyLimiter {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
  ) {}

  get reading(): number {
    return this.total;
  }

  /** A release function, or the refusal when the bounds are reached. */
  acquire(address: string): (() => void) | ({ ok: false } & BodyRefusal) {
    const mine = this.byAddress.get(address) ?? 0;
    if (this.total >= this.maxTotal) return refusal('busy', `${this.total} bodies are being read already; try again later`);
    if (mine >= this.maxPerAddress) return refusal('too-many', `${mine} bodies from ${address} are being read already`);
    this.total++;
    this.byAddress.set(address, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    };
  }
}

/**
 * Reads a request's body for a route, spending nothing on what it will refuse: a Content-Length over the
 * route's limit is refused before a byte is read; a chunked body is refused once it passes the limit; the
 * first `prefixBytes` go to the route's gate (who sealed it) before the rest is read; and the limiter bounds
 * the bodies in flight. After a refusal the caller answers with `refuse`, which closes the connection so the
 * rest of the body is never read.
 */
export async function readBody(req: IncomingMessage, route: BodyRoute, limiter?: BodyLimiter): Promise<BodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && !(Number(declared) <= route.maxBytes))
    return refusal('too-large', `Content-Length ${declared}; this route takes at most ${route.maxBytes} bytes`);
  const release = limiter?.acquire(req.socket.remoteAddress ?? '?');
  if (release && typeof release !== 'function') return release;
  try {
    return await collect(req, route);
  } finally {
    release?.();
  }
}

function collect(req: IncomingMessage, route: BodyRoute): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let gated = !route.gate;
    let done = false;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.pause();
      resolve(r);
    };
    const gate = (): boolean => {
      gated = true;
      const verdict = route.gate!(Buffer.concat(chunks));
      if (verdict) finish({ ok: false, ...verdict });
      return verdict === null;
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > route.maxBytes) return finish(refusal('too-large', `more than ${route.maxBytes} bytes`));
      chunks.push(c);
      if (!gated && size >= (route.prefixBytes ?? 0)) gate();
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done || (!gated && !gate())) return;
      finish({ ok: true, body: Buffer.concat(chunks, size) });
    });
    req.once('error', (err) => finish(refusal('aborted', `the request broke off (${err.message})`)));
    req.once('close', () => req.complete || finish(refusal('aborted', 'the client went away before the body ended')));
  });
}

/**
 * Answers a refused request and closes its connection without reading the rest of its body. The close lingers:
 * FIN right after the answer, the socket destroyed a second later, so the client reads the answer before the
 * reset that unread bytes cause (Node's own `connection: close` would destroy at once, and would first read and
 * discard the whole body of a request nobody read).
 */
export function refuse(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const socket = res.req.socket;
  if (res.headersSent) return void socket.destroy();
  res.req.read(0); // marks the body as taken, so Node does not read it to the end to discard it
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body, () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}

const LINGER_MS = 1000;
