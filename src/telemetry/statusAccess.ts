import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Refusal } from '../refusals.js';

const COOKIE = 'outpost_status';

/** Why the status server turned a request away (its status code in refusals.ts). */
export type AccessRefusal = Extract<Refusal, 'bad-url' | 'no-host' | 'wrong-host' | 'no-token'>;

/** What a request may see: refused (why), or let in, with a cookie to set when it came with `?token=`. */
export type Access = { refused: AccessRefusal } | { path: string; setCookie?: string };

/**
 * Who may read the status page: the Host header must name this node (an IP address, localhost, its listen
 * address, its node name or a configured name), so a DNS-rebinding page cannot read frames through a
 * browser; and when a token is set, the request carries it (Bearer header, `?token=` on the page, or the
 * cookie that sets, HttpOnly and SameSite=Strict, for the page's own requests). /healthz needs no token.
 */
export class StatusAccess {
  private readonly names: Set<string>;
  private readonly digest: Buffer | null;

  constructor(names: readonly string[], token: string | null) {
    this.names = new Set(['localhost', ...names].map((n) => n.toLowerCase()));
    this.digest = token === null ? null : sha256(token);
  }

  check(req: IncomingMessage): Access {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://status.invalid');
      decodeURIComponent(url.pathname);
    } catch {
      return { refused: 'bad-url' };
    }
    const host = hostName(req.headers.host);
    if (host === null) return { refused: 'no-host' };
    if (isIP(host) === 0 && !this.names.has(host)) return { refused: 'wrong-host' };
    // health probes (systemd, a load balancer) carry no token; /healthz says only ok or not, and why
    if (this.digest === null || url.pathname === '/healthz') return { path: url.pathname };
    const query = url.searchParams.get('token');
    const given = bearer(req.headers.authorization) ?? query ?? cookie(req.headers.cookie);
    if (given === null || !timingSafeEqual(sha256(given), this.digest)) return { refused: 'no-token' };
    return query === null
      ? { path: url.pathname }
      : { path: url.pathname, setCookie: `${COOKIE}=${encodeURIComponent(query)}; HttpOnly; SameSite=Strict; Path=/` };
  }
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The name in a Host header, lowercase, without its port or IPv6 brackets; null when there is none. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::\d+)?$/.exec(h) ?? /^([^:]+)(?::\d+)?$/.exec(h);
  return m ? m[1] : null;
}

function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return m ? m[1] : null;
}

function cookie(header: string | undefined): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return null;
      }
    }
  }
  return null;
}
