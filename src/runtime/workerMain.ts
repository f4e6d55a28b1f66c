import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { OutpostError, asOutpostError } from '../errors.js';
import { LocalSession } from './localSession.js';
import type { TensorMap } from './tensorData.js';
import type { WorkerReply, WorkerRequest } from './workerProtocol.js';

/** The inference thread: holds ORT sessions so that session.run never blocks the daemon's event loop. */
const sessions = new Map<string, LocalSession>();
const port = parentPort!;

function transferables(map: TensorMap): ArrayBuffer[] {
  return Object.values(map).map((t) => t.data.buffer as ArrayBuffer);
}

async function handle(req: WorkerRequest): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (req.op) {
    case 'load': {
      const old = sessions.get(req.key);
      if (old && req.reuse) return { value: old.info, transfer: [] };
      const session = await LocalSession.create(req.file, req.spec);
      sessions.set(req.key, session);
      await old?.release();
      return { value: session.info, transfer: [] };
    }
    case 'run': {
      const session = sessions.get(req.key);
      if (!session) throw new OutpostError('OUTPOST_E_MODEL', `no session loaded for ${req.key}`);
      const started = performance.now();
      const outputs = await session.run(req.feeds);
      return { value: { outputs, inferMs: performance.now() - started }, transfer: transferables(outputs) };
    }
    case 'release':
      await sessions.get(req.key)?.release();
      sessions.delete(req.key);
      return { value: null, transfer: [] };
    case 'heap': {
      const h = getHeapStatistics();
      return { value: { heapTotalBytes: h.total_heap_size, heapUsedBytes: h.used_heap_size }, transfer: [] };
    }
  }
}

port.on('message', (req: WorkerRequest) => {
  handle(req).then(
    ({ value, transfer }) => port.postMessage({ id: req.id, ok: true, value } as WorkerReply, transfer),
    (err: unknown) => {
      // a catalogued code only: a raw errno forwarded as the code once made a failed start exit 0
      const e = asOutpostError(err, 'OUTPOST_E_MODEL');
      port.postMessage({ id: req.id, ok: false, code: e.code, message: e.message } as WorkerReply);
    },
  );
});
