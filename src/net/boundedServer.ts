import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The bounds every HTTP server of the node runs with. */
export interface ServerLimits {
  /** open connections in all; past it a new one is closed at once */
  maxConnections: number;
  /** open connections from one remote address */
  maxPerAddress: number;
  /** the whole header must arrive within this */
  headersTimeoutMs: number;
  /** the whole request (header and body) must arrive within this */
  requestTimeoutMs: number;
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxConnections: 256,
  maxPerAddress: 32,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
};

/** Why a connection was refused or cut: counted by the server that owns it. */
export type ConnectionRefusal = 'max-connections' | 'per-address' | 'timeout' | 'accept-failed' | 'client-error';

export interface BoundedServerOptions {
  limits?: Partial<ServerLimits>;
  /** counts a refusal (a metric); called for every one */
  refused: (reason: ConnectionRefusal) => void;
  /** logs a server error that is not a refusal (EMFILE on accept …); rate-limited here */
  warn: (err: Error) => void;
}

/**
 * An http.Server that no client can exhaust: bounded connections in all and per address, header, request and
 * keep-alive timeouts checked every second, and errors on accept (EMFILE) or from a client's garbage counted
 * instead of thrown to the top.
 */
export function createBoundedServer(handler: (req: IncomingMessage, res: ServerResponse) => void, opts: BoundedServerOptions): Server {
  const l = { ...DEFAULT_LIMITS, ...opts.limits };
  const server = createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
    },
    handler,
  );
  server.maxConnections = l.maxConnections;
  server.maxRequestsPerSocket = 1000;
  server.on('drop', () => opts.refused('max-connections'));
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?';
    const n = (open.get(address) ?? 0) + 1;
    if (n > l.maxPerAddress) {
      opts.refused('per-address');
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    opts.refused(timedOut ? 'timeout' : 'client-error');
    const status = timedOut ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    socket.destroy();
  });
  const warn = rateLimited(opts.warn, 10_000);
  server.on('error', (err) => {
    opts.refused('accept-failed');
    warn(err);
  });
  return server;
}

/** Stops a server now: open connections (keep-alive, a slow body) are cut, then it stops listening. */
export async function closeServer(server: Server | null): Promise<void> {
  if (!server) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** `fn` at most once per `everyMs` (the calls in between are dropped; the caller counts them). */
function rateLimited(fn: (err: Error) => void, everyMs: number): (err: Error) => void {
  let last = -Infinity;
  return (err) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    try {
      fn(err);
    } catch {
      /* a failing logger must not take the server down */
    }
  };
}
