import type { OffloadConfig } from '../config/index.js';
import { movingAverage } from '../movingAverage.js';
import type { Keyring } from '../crypto/index.js';
import type { Logger } from '../log.js';

/** A peer: where it is, what it says it has, and how it has behaved. */
export interface Peer {
  name: string;
  url: string;
  box: Uint8Array;
  source: 'static' | 'announced';
  /** model sha256 → its ms per frame there (null: not measured yet); null: it did not say (a static peer) */
  models: Record<string, number | null> | null;
  queue: number;
  level: string | null;
  /** it takes a file it lacks from us (`serve.acceptModels`) */
  acceptsModels: boolean;
  online: boolean;
  rttMs: number | null;
  /** its own ms per frame as we saw it */
  msPerFrame: number | null;
  inflight: number;
  /** frames it answered per second, over the last RATE_WINDOW_MS */
  rate: { perSecond: number; since: number; count: number };
  sent: number;
  ok: number;
  failures: number;
  consecutiveFailures: number;
  breaker: 'closed' | 'open';
  restUntil: number;
  /** passed a known-answer probe since it last rested */
  verified: boolean;
  lastProbeAt: number;
  lastError: string | null;
}

const RATE_WINDOW_MS = 10_000;

/**
 * Every peer this node may send frames to: static ones from the config and announced ones from the broker,
 * each only with keys from the keyring (role peer). Tracks round trip, failures and a circuit breaker per peer:
 * a peer that fails `breaker.failures` times in a row rests for `breaker.restSeconds`, then must pass a
 * known-answer probe again before it gets frames.
 */
export class PeerTable {
  private readonly peers = new Map<string, Peer>();

  constructor(
    private readonly keyring: Keyring,
    private readonly cfg: OffloadConfig,
    /** breaker open (warn) and closed again (info) */
    private readonly log?: Logger,
  ) {
    for (const p of cfg.peers) this.upsert(p.name, { url: p.url, source: 'static' });
  }

  all(): Peer[] {
    return [...this.peers.values()];
  }

  get(name: string): Peer | undefined {
    return this.peers.get(name);
  }

  /** Adds or refreshes a peer; false when its keyring entry is missing or cannot be sealed to. */
  upsert(
    name: string,
    info: { url: string; source: Peer['source']; models?: Record<string, number | null>; queue?: number; level?: string | null; acceptsModels?: boolean },
  ): boolean {
    const key = this.keyring.named(name);
    if (!key?.box || !key.roles.has('peer')) return false;
    const p = this.peers.get(name) ?? {
      name,
      url: info.url,
      box: key.box,
      source: info.source,
      models: null,
      queue: 0,
      level: null,
      acceptsModels: false,
      online: true,
      rttMs: null,
      msPerFrame: null,
      inflight: 0,
      rate: { perSecond: 0, since: 0, count: 0 },
      sent: 0,
      ok: 0,
      failures: 0,
      consecutiveFailures: 0,
      breaker: 'closed' as const,
      restUntil: 0,
      verified: false,
      lastProbeAt: 0,
      lastError: null,
    };
    const { models, queue, level, acceptsModels } = info;
    const said = Object.entries({ models, queue, level, acceptsModels }).filter(([, v]) => v !== undefined); // a static peer says none of them
    Object.assign(p, { url: info.url, online: true }, Object.fromEntries(said));
    this.peers.set(name, p);
    return true;
  }

  /** Files we gave it: it has them now (until its next announcement says so itself). */
  gave(p: Peer, shas: readonly string[]): void {
    p.acceptsModels = true;
    if (p.models) for (const sha of shas) p.models[sha] ??= null;
  }

  /** Its status went offline (a last will): no frames until it announces again. */
  offline(name: string): void {
    const p = this.peers.get(name);
    if (p && p.source === 'announced') p.online = false;
  }

  /** Peers that may take a frame of these models now: online, verified, breaker closed, below the in-flight cap. */
  candidates(models: readonly string[]): Peer[] {
    return this.all().filter(
      (p) =>
        p.online &&
        p.verified &&
        p.breaker === 'closed' &&
        p.inflight < this.cfg.placement.maxInflightPerPeer &&
        (p.models === null || models.every((m) => m in p.models!)),
    );
  }

  /** Expected ms until a frame sent now is answered: round trip, the queue there, its time per frame. */
  estimate(p: Peer, model: string): number {
    const ms = p.models?.[model] ?? p.msPerFrame ?? 0;
    return (p.rttMs ?? 5) + (p.queue + p.inflight) * ms + ms;
  }

  begin(p: Peer): void {
    p.inflight++;
    p.sent++;
  }

  succeeded(p: Peer, totalMs: number, remoteMs: number, now: number): void {
    p.inflight--;
    p.ok++;
    this.count(p, now);
    p.consecutiveFailures = 0;
    this.measured(p, totalMs, remoteMs);
  }

  private count(p: Peer, now: number): void {
    const r = p.rate;
    if (now - r.since >= RATE_WINDOW_MS) {
      r.perSecond = r.since === 0 ? 0 : (r.count * 1000) / (now - r.since);
      Object.assign(r, { since: now, count: 0 });
    }
    r.count++;
  }

  /** A probe's round trip: timing only (a probe is not a frame in flight). */
  measured(p: Peer, totalMs: number, remoteMs: number): void {
    p.rttMs = movingAverage(p.rttMs, Math.max(0, totalMs - remoteMs));
    p.msPerFrame = movingAverage(p.msPerFrame, remoteMs);
  }

  failed(p: Peer, err: string, now: number): void {
    p.inflight = Math.max(0, p.inflight - 1);
    this.fault(p, err, now);
  }

  /** A wrong answer or a failure; enough in a row rests the peer and takes its verification away. */
  fault(p: Peer, err: string, now: number): void {
    p.failures++;
    p.consecutiveFailures++;
    p.lastError = err;
    if (p.consecutiveFailures >= this.cfg.breaker.failures || !p.verified) this.rest(p, now);
  }

  rest(p: Peer, now: number): void {
    if (p.breaker === 'closed')
      this.log?.warn(
        { peer: p.name, url: p.url, err: p.lastError, restSeconds: this.cfg.breaker.restSeconds },
        'peer breaker open: no frames to it until it rests and passes a known-answer probe',
      );
    p.breaker = 'open';
    p.verified = false;
    p.restUntil = now + this.cfg.breaker.restSeconds * 1000;
  }

  /** Peers to ask a known-answer probe now: never verified, rested long enough, or verified a while ago. */
  dueForProbe(now: number): Peer[] {
    return this.all().filter((p) => p.online && p.inflight === 0 && now >= p.restUntil && (!p.verified || now - p.lastProbeAt >= this.cfg.probeSeconds * 1000));
  }

  probed(p: Peer, ok: boolean, now: number, detail: string | null): void {
    p.lastProbeAt = now;
    if (ok) {
      if (p.breaker === 'open') this.log?.info({ peer: p.name, url: p.url }, 'peer breaker closed: it passed its known-answer probe and gets frames again');
      p.verified = true;
      p.breaker = 'closed';
      p.consecutiveFailures = 0;
      p.lastError = null;
    } else {
      p.lastError = detail;
      this.rest(p, now);
    }
  }

  status(now: number): Record<string, unknown> {
    return Object.fromEntries(
      this.all().map((p) => [
        p.name,
        {
          url: p.url,
          source: p.source,
          // a static peer has no status topic: its breaker says whether it answers
          online: p.online && (p.source === 'announced' || p.breaker === 'closed'),
          verified: p.verified,
          breaker: p.breaker,
          rttMs: p.rttMs === null ? null : Math.round(p.rttMs * 10) / 10,
          msPerFrame: p.msPerFrame === null ? null : Math.round(p.msPerFrame * 10) / 10,
          inflight: p.inflight,
          framesPerSecond: now - p.rate.since > 2 * RATE_WINDOW_MS ? 0 : Math.round(p.rate.perSecond * 100) / 100,
          sent: p.sent,
          ok: p.ok,
          failures: p.failures,
          lastError: p.lastError,
        },
      ]),
    );
  }
}
