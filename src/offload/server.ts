import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { movingAverage } from '../movingAverage.js';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import type { OffloadConfig } from '../config/index.js';
import {
  EnvelopeError,
  fromB64,
  Keyring,
  NonceCache,
  SENDER_BYTES,
  SealedEnvelope,
  sealedBy,
  type NodeKeys,
  type Opened,
  type TrustedKey,
} from '../crypto/index.js';
import { OutpostError, errorMessage, isSystemError } from '../errors.js';
import { BodyLimiter, closeServer, createBoundedServer, readBody, refuse, type BodyRoute } from '../net/index.js';
import { RefusalBudget } from '../refusalBudget.js';
import type { Frame, PipelineOutput } from '../types.js';
import type { PeerFileCache } from './fileCache.js';
import {
  OFFLOAD_REFUSALS,
  filesOf,
  parseRegions,
  parseStageSpecs,
  type FileRequest,
  type OffloadRefusal,
  type Refusal,
  type RunAnswer,
  type RunRequest,
  type StageSpec,
} from './protocol.js';
import { MAX_MESSAGE_ID, PeerRateLimiter, tooManyCrops, within } from './workBounds.js';

/** Runs stages on a frame with this node's models (the pipeline side provides it). */
export type StageRunner = (stages: StageSpec[], frame: Frame, regions: PipelineOutput | null) => Promise<{ output: PipelineOutput; inferMs: number }>;

export interface OffloadServerDeps {
  keys: () => NodeKeys;
  /** the sha256 of every model file this node serves (announced) */
  models: () => ReadonlySet<string>;
  /** the sha256 of every file it can run a stage with: models, dictionaries, labels files */
  files: () => ReadonlySet<string>;
  run: StageRunner;
  /** a frame's format and size from its header, without decoding it (null: not a JPEG or PNG) */
  frameHeader: (data: Uint8Array) => { width: number; height: number } | null;
  /** files taken from peers (`serve.acceptModels`) */
  cache: PeerFileCache | null;
  /** releases what running for peers took (their pipelines' sessions) */
  close?: () => Promise<void>;
}

class Refused extends Error {
  constructor(
    readonly reason: OffloadRefusal,
    message: string,
    readonly missing?: string[],
  ) {
    super(message);
  }
}

type Answer = { status: number; body: Buffer | string };

/**
 * The offload endpoint. POST /v1/run: opens a sealed frame from a keyring key with role `peer`, checks its
 * freshness, message id, size and files, runs the stages and seals the answer back. POST /v1/files (with
 * `serve.acceptModels`): takes a file a requester's stages need, checked against its sha256. What it cannot open,
 * from a key it does not trust, outside the window, already seen, oversized, for a file it lacks or past its
 * queue is refused with a distinct status and counted; it keeps serving everyone else.
 */
export class OffloadServer implements Component {
  readonly name = 'offload-server';
  private server: Server | null = null;
  private envelope: SealedEnvelope | null = null;
  private readonly keyring: Keyring;
  private readonly nonces: NonceCache;
  private running = 0;
  private refused: Counter<'reason'> | null = null;
  private connectionsRefused: Counter<'reason'> | null = null;
  /** bodies read at once: frames (`maxBodyBytes` each), and files (up to the cache's size) one at a time */
  private readonly frameBodies = new BodyLimiter(16, 4);
  private readonly fileBodies = new BodyLimiter(1, 1);
  /** every refusal is counted (/metrics); a flood of them writes a bounded number of lines */
  private readonly logBudget = new RefusalBudget(
    (suppressed, byReason, seconds) =>
      this.ctx.log.warn({ suppressed, byReason }, `suppressed ${suppressed} offload refusals in ${seconds} s (all counted in metrics)`),
    () => this.ctx.clock.now(),
    10,
  );
  private served: Counter | null = null;
  private abandoned: Counter | null = null;
  private readonly rate: PeerRateLimiter;
  private readonly msPerFrame = new Map<string, number>();

  constructor(
    private readonly ctx: ComponentContext,
    private readonly cfg: Readonly<OffloadConfig>,
    private readonly deps: OffloadServerDeps,
  ) {
    this.keyring = new Keyring(ctx.config.keyring);
    this.nonces = new NonceCache(10_000, 2 * cfg.windowSeconds * 1000);
    this.rate = new PeerRateLimiter(() => cfg.serve.maxRequestsPerSecond);
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.cfg.serve.port;
  }

  /** What announcements say: queue depth, ms per frame by file sha256, whether it takes files it lacks. */
  load(): { queue: number; models: Record<string, number | null>; acceptsModels: boolean } {
    const shas = [...this.deps.models(), ...(this.deps.cache?.shas() ?? [])];
    return { queue: this.running, models: Object.fromEntries(shas.map((m) => [m, this.msPerFrame.get(m) ?? null])), acceptsModels: this.deps.cache !== null };
  }

  async start(): Promise<void> {
    this.envelope = new SealedEnvelope(this.deps.keys().box);
    this.registerMetrics();
    const { host, port } = this.cfg.serve;
    const http = createBoundedServer((req, res) => this.serve(req, res), {
      limits: { requestTimeoutMs: 120_000 }, // a file may be modelCacheBytes; bodies in flight are bounded anyway
      refused: (reason) => this.connectionsRefused?.inc({ reason }),
      warn: (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'offload server error (refused, counted)'),
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (err) =>
        reject(
          isSystemError(err) && err.code === 'EADDRINUSE'
            ? new OutpostError('OUTPOST_E_PORT', `offload.serve.port ${port} is already in use; choose another`)
            : err,
        ),
      );
      http.listen(port, host, resolve);
    });
    this.server = http;
    this.ctx.log.info(
      { url: `http://${host}:${this.port}/v1/run`, models: this.deps.models().size, acceptsModels: this.deps.cache !== null },
      'serving frames for peers',
    );
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    await closeServer(s);
    await this.deps.close?.();
  }

  status(): Record<string, unknown> {
    return {
      offload: {
        serving: { port: this.port, queue: this.running, msPerFrame: Object.fromEntries(this.msPerFrame), filesTaken: this.deps.cache?.shas().length ?? 0 },
      },
    };
  }

  /** One request: its body read through the route's bounds and gate (strangers refused first), then answered. */
  private serve(req: IncomingMessage, res: ServerResponse): void {
    const at = req.socket.remoteAddress ?? '';
    const route = req.method === 'POST' && { '/v1/run': (b: Buffer) => this.run(b, at), '/v1/files': (b: Buffer) => this.file(b, at) }[req.url ?? ''];
    if (!route) return void res.writeHead(404).end();
    if (req.url === '/v1/files' && !this.deps.cache)
      return this.refuse(res, 'not-accepted', 'this node does not take files from peers (offload.serve.acceptModels)');
    readBody(req, this.bodyRoute(req.url!), req.url === '/v1/files' ? this.fileBodies : this.frameBodies)
      .then(async (read) => {
        if (!read.ok) return this.refuse(res, read.reason as OffloadRefusal, read.message);
        const { status, body } = await this.answer(read.body, route);
        res.writeHead(status, { 'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream' }).end(body);
      })
      .catch((err: unknown) => this.ctx.log.error({ err: errorMessage(err) }, 'offload answer failed'));
  }

  /** Files may be as large as the cache, frames `maxBodyBytes`; either from a keyring peer, checked on the envelope's first bytes. */
  private bodyRoute(url: string): BodyRoute {
    const serve = this.cfg.serve;
    return {
      maxBytes: url === '/v1/files' ? serve.modelCacheBytes + (1 << 16) : serve.maxBodyBytes,
      prefixBytes: SENDER_BYTES,
      gate: (prefix) => {
        const why = sealedBy(prefix) === null ? 'garbage' : this.peerKey(prefix) ? null : 'unknown-key';
        return why && { reason: why, status: OFFLOAD_REFUSALS[why], message: why === 'garbage' ? 'not a sealed envelope' : 'the sender is not a peer here' };
      },
    };
  }

  /** Refused before the body was read (or the rest of it): counted, logged at a bounded rate, the connection closed. */
  private refuse(res: ServerResponse, reason: OffloadRefusal, message: string): void {
    this.refused?.inc({ reason });
    this.logRefused(reason, message);
    refuse(res, OFFLOAD_REFUSALS[reason], JSON.stringify({ reason } satisfies Refusal));
  }

  private logRefused(reason: OffloadRefusal, detail: string): void {
    if (this.logBudget.take(reason)) this.ctx.log.warn({ reason, detail }, 'offload request refused');
  }

  private async answer(body: Buffer, route: (b: Buffer) => Promise<Answer>): Promise<Answer> {
    let known = false;
    try {
      known = this.peerKey(body) !== null;
      return await route(body);
    } catch (err) {
      const r = err instanceof Refused ? err : new Refused('failed', errorMessage(err));
      this.refused?.inc({ reason: r.reason });
      this.logRefused(r.reason, r.message);
      const refusal: Refusal = known
        ? { reason: r.reason, detail: r.message, ...(r.missing ? { missing: r.missing, send: this.deps.cache !== null } : {}) }
        : { reason: r.reason };
      return { status: OFFLOAD_REFUSALS[r.reason], body: JSON.stringify(refusal) };
    }
  }

  private async run(body: Buffer, at: string): Promise<Answer> {
    const { header, payload, from, key } = this.admit<RunRequest>(body, 'offload-run', at);
    const { stages, regions } = this.checked(header);
    this.bound(stages, regions, payload);
    const serve = this.cfg.serve;
    if (this.running >= serve.maxQueue) throw new Refused('busy', `${this.running} frames already here`);
    const missing = stages.flatMap(filesOf).filter((f) => !this.deps.files().has(f));
    if (missing.length > 0) throw new Refused('unknown-model', `no file with sha256 ${missing[0].slice(0, 12)}… here`, missing);
    const frame: Frame = {
      id: `${key.name}-${header.messageId}`,
      camera: key.name,
      seq: 0,
      capturedAt: header.sentAt,
      data: payload,
      encoding: 'jpeg',
      width: 0,
      height: 0,
    };
    const started = performance.now();
    const { output, inferMs } = await within(this.track(this.deps.run(stages, frame, regions)), serve.runTimeoutMs, () => {
      this.abandoned?.inc();
      return new Refused('timed-out', `still running after offload.serve.runTimeoutMs ${serve.runTimeoutMs} ms; its result is dropped`);
    }).catch((err) => {
      throw err instanceof Refused ? err : new Refused('failed', errorMessage(err));
    });
    const processMs = performance.now() - started;
    this.learn(stages[0].model, processMs);
    this.served?.inc();
    const answer: RunAnswer = { purpose: 'offload-result', messageId: header.messageId, output, inferMs, processMs };
    return { status: 200, body: this.envelope!.seal({ ...answer }, Buffer.alloc(0), from) };
  }

  /** Counts work in the queue until it settles, answered or not: a timed-out frame still holds its place. */
  private track<T>(work: Promise<T>): Promise<T> {
    this.running++;
    return work.finally(() => this.running--);
  }

  /** Refuses work past this peer's bounds before any of it starts: crops, and pixels read from the frame's header. */
  private bound(stages: StageSpec[], regions: PipelineOutput | null, payload: Buffer): void {
    const serve = this.cfg.serve;
    const crops = tooManyCrops(stages, regions, serve.maxCrops);
    if (crops) throw new Refused('too-large', crops);
    const size = this.deps.frameHeader(payload);
    if (!size) throw new Refused('garbage', 'the frame is not a JPEG or PNG');
    if (size.width * size.height > serve.maxPixels)
      throw new Refused('too-large', `the frame is ${size.width}x${size.height}, more than offload.serve.maxPixels ${serve.maxPixels} pixels`);
  }

  private async file(body: Buffer, at: string): Promise<Answer> {
    if (!this.deps.cache) throw new Refused('unknown-model', 'this node does not take files from peers (offload.serve.acceptModels)');
    const { header, payload, from, key } = this.admit<FileRequest>(body, 'offload-file', at);
    try {
      this.deps.cache.put(header.sha256, payload);
    } catch (err) {
      throw new Refused('garbage', errorMessage(err));
    }
    this.ctx.log.info({ peer: key.name, sha256: header.sha256, bytes: payload.length }, 'took a file from a peer');
    return {
      status: 200,
      body: this.envelope!.seal({ purpose: 'offload-file-stored', messageId: header.messageId, sha256: header.sha256 }, Buffer.alloc(0), from),
    };
  }

  private peerKey(body: Buffer): TrustedKey | null {
    const sender = sealedBy(body);
    const key = sender === null ? null : this.keyring.boxOwner(sender);
    return key && key.roles.has('peer') ? key : null;
  }

  /** Checks who sealed a request (before opening it), opens it, and checks what it is and when it was sent. */
  private admit<H extends { purpose: string; sender: string; messageId: string; sentAt: number }>(
    body: Buffer,
    purpose: H['purpose'],
    at: string,
  ): Opened<H> & { from: Uint8Array; key: TrustedKey } {
    if (sealedBy(body) === null) throw new Refused('garbage', 'not a sealed envelope');
    const key = this.peerKey(body);
    if (!key) throw new Refused('unknown-key', "the sender's key is not a peer in this keyring");
    // before opening: opening costs CPU in proportion to the body; per address too, so a stranger naming a peer's key elsewhere cannot spend its share
    const rate = this.cfg.serve.maxRequestsPerSecond;
    if (!this.rate.take(`${key.name} ${at}`, this.ctx.clock.now()))
      throw new Refused('rate-limited', `more than ${rate} requests a second from ${key.name} at ${at} (offload.serve.maxRequestsPerSecond)`);
    let opened: Opened<H>;
    try {
      opened = this.envelope!.open<H>(body);
    } catch (err) {
      throw new Refused(err instanceof EnvelopeError && err.reason === 'cannot-open' ? 'cannot-open' : 'garbage', errorMessage(err));
    }
    const h = opened.header;
    if (h.purpose !== purpose || typeof h.messageId !== 'string' || typeof h.sentAt !== 'number') throw new Refused('garbage', `not an ${purpose} request`);
    if (h.messageId.length > MAX_MESSAGE_ID) throw new Refused('garbage', `a message id of ${h.messageId.length} characters (at most ${MAX_MESSAGE_ID})`);
    if (h.sender !== key.name) throw new Refused('wrong-sender', `sealed with ${key.name}'s key but says ${h.sender}`);
    const now = this.ctx.clock.now();
    if (Math.abs(now - h.sentAt) > this.cfg.windowSeconds * 1000) throw new Refused('expired', `sent ${Math.round((now - h.sentAt) / 1000)} s from now`);
    if (!this.nonces.admit(`${key.name}/${h.messageId}`, now)) throw new Refused('replayed', `message ${h.messageId} was already seen`);
    return { ...opened, from: fromB64(opened.sender)!, key };
  }

  private checked(request: RunRequest): { stages: StageSpec[]; regions: PipelineOutput | null } {
    try {
      return { stages: parseStageSpecs(request.stages), regions: parseRegions(request.regions) };
    } catch (err) {
      throw new Refused('garbage', errorMessage(err));
    }
  }

  private learn(model: string, ms: number): void {
    const old = this.msPerFrame.get(model);
    this.msPerFrame.set(model, Math.round(movingAverage(old, ms) * 10) / 10);
  }

  private registerMetrics(): void {
    const registers = [this.ctx.registry];
    this.refused = new Counter({ name: 'outpost_offload_refused_total', help: 'Offload requests refused, by reason', labelNames: ['reason'], registers });
    this.connectionsRefused = new Counter({
      name: 'outpost_offload_connections_refused_total',
      help: 'Connections to the offload server closed unserved, by reason (too many, too slow, garbage)',
      labelNames: ['reason'],
      registers,
    });
    this.served = new Counter({ name: 'outpost_offload_served_total', help: 'Frames run for peers', registers });
    this.abandoned = new Counter({
      name: 'outpost_offload_abandoned_total',
      help: 'Peer frames answered timed-out (offload.serve.runTimeoutMs) whose work went on to its end and was dropped',
      registers,
    });
    for (const r of Object.keys(OFFLOAD_REFUSALS)) this.refused.inc({ reason: r }, 0);
    const server = this;
    new Gauge({
      name: 'outpost_offload_queue',
      help: 'Peer frames running or waiting here',
      registers,
      collect() {
        this.set(server.running);
      },
    });
    if (this.deps.cache) {
      const cache = this.deps.cache;
      new Gauge({
        name: 'outpost_offload_files_evicted',
        help: 'Files taken from peers and evicted to stay within offload.serve.modelCacheBytes',
        registers,
        collect() {
          this.set(cache.evicted);
        },
      });
    }
  }
}
