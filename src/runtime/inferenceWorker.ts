import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { OutpostError, isOutpostErrorCode } from '../errors.js';
import type { SessionInfo, SessionSpec } from './localSession.js';
import type { TensorMap } from './tensorData.js';
import type { RunReply, WorkerHeap, WorkerReply, WorkerRequest } from './workerProtocol.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Under vitest the sources are .ts files; the worker always runs the compiled JavaScript. */
function workerFile(): string {
  const here = fileURLToPath(new URL('./workerMain.js', import.meta.url));
  if (existsSync(here)) return here;
  const compiled = here.replace(/([\\/])src([\\/]runtime[\\/])/, '$1dist$2');
  if (existsSync(compiled)) return compiled;
  throw new OutpostError('OUTPOST_E_MODEL', `inference worker ${compiled} is missing; run npm run build`);
}

/**
 * Owns the inference thread. ORT's run() is synchronous native code: on this thread it would stall the
 * status server and camera reads for the whole inference, so every session lives in the worker.
 */
export class InferenceWorker {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  start(): void {
    if (this.worker) return;
    const worker = new Worker(workerFile());
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      this.worker = null;
      this.failAll(new OutpostError('OUTPOST_E_MODEL', `inference worker exited (code ${code})`));
    });
    this.worker = worker;
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  /** Creates a session under `key`; with `reuse`, a session already loaded under that key is kept. */
  load(key: string, file: string, spec: SessionSpec, reuse = false): Promise<SessionInfo> {
    return this.call({ op: 'load', key, file, spec, reuse }) as Promise<SessionInfo>;
  }

  /** Feeds are transferred to the worker: the caller must not touch their buffers afterwards. */
  run(key: string, feeds: TensorMap): Promise<RunReply> {
    const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
    return this.call({ op: 'run', key, feeds }, transfer) as Promise<RunReply>;
  }

  release(key: string): Promise<void> {
    return this.call({ op: 'release', key }) as Promise<void>;
  }

  /** The inference thread's V8 heap (its isolate is separate from the main thread's). */
  heap(): Promise<WorkerHeap> {
    return this.call({ op: 'heap' }) as Promise<WorkerHeap>;
  }

  private call(req: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new OutpostError('OUTPOST_E_MODEL', 'inference worker is not running (start() first)'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id }, transfer);
    });
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve(reply.value);
    else p.reject(new OutpostError(isOutpostErrorCode(reply.code) ? reply.code : 'OUTPOST_E_INTERNAL', reply.message));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
