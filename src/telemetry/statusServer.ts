import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import type { Component, Health } from '../core/index.js';
import { OutpostError, errorMessage, isSystemError } from '../errors.js';
import type { Logger } from '../log.js';
import { closeServer, createBoundedServer } from '../net/index.js';
import type { LiveFeed } from './liveFeed.js';
import { StatusAccess, type AccessRefusal } from './statusAccess.js';
import { REFUSAL_STATUS } from '../refusals.js';

export interface StatusServerOptions {
  host: string;
  port: number;
  /** JSON for GET /status */
  status: () => unknown;
  /** HTML for GET / */
  page: () => string;
  /** GET /events (server-sent events) and GET /cameras/NAME/latest.jpg */
  live?: LiveFeed;
  /** true while frames flow (GET /healthz answers 200, else 503) */
  healthy: () => Health;
  registry: Registry;
  log: Logger;
  /** 'none' or absent: no token (the config demands one beyond loopback) */
  auth?: 'none' | { token: string } | { tokenFile: string };
  /** names the page may be reached by besides IP addresses, localhost and `host` (the node name, status.allowedHosts) */
  names: readonly string[];
}

/** GET / (a page), /healthz, /status and /metrics on plain node:http: read-only routes need no framework. */
export class StatusServer implements Component {
  readonly name = 'status-server';
  private server: Server | null = null;
  private access: StatusAccess | null = null;
  private refused: Counter<'reason'> | null = null;

  constructor(private readonly opts: StatusServerOptions) {}

  async start(): Promise<void> {
    const auth = this.opts.auth;
    const token = typeof auth !== 'object' ? null : 'token' in auth ? auth.token : readFileSync(auth.tokenFile, 'utf8').split('\n')[0].trim();
    if (token !== null && token.length < 16)
      throw new OutpostError('OUTPOST_E_CONFIG', 'the status token (status.auth) has fewer than 16 characters; write one made by `openssl rand -hex 16`');
    this.access = new StatusAccess([this.opts.host, ...this.opts.names], token);
    const refused = new Counter({
      name: 'outpost_status_refused_total',
      help: 'Status page requests and connections refused, by reason (host, token, bad URL, too many, too slow)',
      labelNames: ['reason'],
      registers: [this.opts.registry],
    });
    this.refused = refused;
    const server = createBoundedServer(
      (req, res) => {
        this.route(req, res).catch((err: unknown) => {
          this.opts.log.error({ err: errorMessage(err) }, 'status request failed');
          if (!res.headersSent) res.writeHead(500).end('internal error\n');
        });
      },
      { refused: (reason) => refused.inc({ reason }), warn: (err) => this.opts.log.warn({ err: errorMessage(err) }, 'status server error (refused, counted)') },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(this.listenError(err)));
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.opts.log.info({ url: `http://${this.opts.host}:${this.port}/status` }, 'status server listening');
  }

  private listenError(err: Error): Error {
    const where = `${this.opts.host}:${this.opts.port}`;
    if (isSystemError(err) && err.code === 'EADDRINUSE') {
      return new OutpostError(
        'OUTPOST_E_PORT',
        `status.port ${this.opts.port} on ${this.opts.host} is already in use (another outpost?); stop that process or set status.port`,
        { cause: err },
      );
    }
    if (isSystemError(err) && (err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES')) {
      return new OutpostError('OUTPOST_E_PORT', `cannot listen on ${where} (${err.code}); check status.host and status.port`, { cause: err });
    }
    return err;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.opts.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    await closeServer(server);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const access = this.access!.check(req);
    if ('refused' in access) return this.refuse(res, access.refused);
    const path = access.path;
    if (access.setCookie) res.setHeader('set-cookie', access.setCookie);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const h = this.opts.healthy();
      json(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unhealthy', reason: h.reason });
    } else if (path === '/status') {
      json(res, 200, this.opts.status());
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(this.opts.page());
    } else if (path === '/events' && this.opts.live) {
      this.opts.live.attach(res);
    } else if (/^\/cameras\/[^/]+\/latest\.jpg$/.test(path) && this.opts.live) {
      const jpeg = this.opts.live.latestJpeg(decodeURIComponent(path.split('/')[2]));
      if (!jpeg) return json(res, 404, { error: 'no frame with a result from that camera yet' });
      res.writeHead(200, { 'content-type': 'image/jpeg', 'cache-control': 'no-store' }).end(await jpeg);
    } else if (path === '/metrics') {
      const body = await this.opts.registry.metrics();
      res.writeHead(200, { 'content-type': this.opts.registry.contentType }).end(body);
    } else {
      json(res, 404, { error: `no route ${path}; try /status, /healthz or /metrics` });
    }
  }

  private refuse(res: ServerResponse, reason: AccessRefusal): void {
    this.refused?.inc({ reason });
    const why = {
      'bad-url': 'the URL does not decode',
      'no-host': 'no Host header',
      'wrong-host': 'this server does not serve that host name; add it to status.allowedHosts',
      'no-token': 'a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN on the page',
    }[reason];
    json(res, REFUSAL_STATUS[reason], { error: why }, reason === 'no-token' ? { 'www-authenticate': 'Bearer' } : {});
  }
}

function json(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body, null, 2) + '\n');
}
