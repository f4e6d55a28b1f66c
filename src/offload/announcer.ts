import { networkInterfaces } from 'node:os';
import { Counter } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import { Keyring, MessageVerifier, signMessage, toB64, type NodeKeys } from '../crypto/index.js';
import type { MqttLink } from '../mqtt/index.js';
import type { OffloadConfig } from '../config/index.js';
import { RefusalBudget } from '../refusalBudget.js';
import type { Refusal } from '../refusals.js';
import type { PeerTable } from './peerTable.js';
import { errorMessage } from '../errors.js';
import { guarded } from '../guarded.js';

/** What a serving node says of itself, signed, retained on `<base>/<device>/offload`. */
export interface Announcement {
  url: string;
  box: string;
  models: Record<string, number | null>;
  queue: number;
  level: string | null;
  acceptsModels: boolean;
}

/** The first IPv4 address a LAN peer can reach, for the advertised URL. */
function lanAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

/**
 * Offload discovery over the fleet's broker. A serving node announces its URL, box key, models (by sha256) with
 * ms per frame, queue and governor level, signed with its Ed25519 key, retained and refreshed; a clean stop
 * clears it, and its status going offline (the last will) takes it out of every table. Every node reads the
 * others' announcements: unsigned, badly signed, unknown, stale or misplaced ones are ignored and counted.
 */
export class Announcer implements Component {
  readonly name = 'offload-announcer';
  private timer: NodeJS.Timeout | null = null;
  private level: string | null = null;
  private ignored: Counter<'reason'> | null = null;
  private readonly verifier: MessageVerifier;
  /** junk naming a peer is counted in full but logged at a bounded rate */
  private readonly logBudget: RefusalBudget;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly cfg: Readonly<OffloadConfig>,
    private readonly link: MqttLink,
    private readonly peers: PeerTable,
    private readonly serving: {
      keys: () => NodeKeys;
      port: () => number;
      load: () => { queue: number; models: Record<string, number | null>; acceptsModels: boolean };
    } | null,
  ) {
    const every = cfg.serve.announceSeconds;
    this.verifier = new MessageVerifier({
      keyring: new Keyring(ctx.config.keyring),
      purpose: 'announce',
      role: 'peer',
      target: 'fleet',
      windowMs: 3 * every * 1000,
      now: () => ctx.clock.now(),
    });
    this.logBudget = new RefusalBudget(
      (suppressed, byReason, seconds) => ctx.log.warn({ suppressed, byReason }, `suppressed ${suppressed} ignored peer announcements in ${seconds} s`),
      () => ctx.clock.now(),
    );
  }

  async start(): Promise<void> {
    this.ignored = new Counter({
      name: 'outpost_offload_announcements_ignored_total',
      help: 'Peer announcements ignored, by reason',
      labelNames: ['reason'],
      registers: [this.ctx.registry],
    });
    this.ctx.bus.on('governor.policy', this.name, ({ level }) => (this.level = level));
    this.link.subscribe(this.link.fleetFilter('offload'), this.name, (topic, payload) => this.take(topic, payload));
    this.link.subscribe(this.link.fleetFilter('status'), this.name, (topic, payload) => {
      if (/"state"\s*:\s*"offline"/.test(payload.toString('utf8'))) this.peers.offline(topic.split('/').at(-2)!);
    });
    if (this.serving) {
      this.link.onConnect(this.name, () => this.announce());
      this.timer = setInterval(
        guarded(
          () => this.announce(),
          (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'offload announcement failed; trying again on the next tick'),
        ),
        this.cfg.serve.announceSeconds * 1000,
      );
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.serving) this.link.publish(this.link.topic('offload'), '', { retain: true, qos: 1 }); // clear it
    this.link.off(this.name);
    this.logBudget.flush();
  }

  private announce(): void {
    const s = this.serving!;
    const serve = this.cfg.serve;
    const body: Announcement = {
      url: serve.advertise ?? `http://${lanAddress()}:${s.port()}`,
      box: toB64(s.keys().box.publicKey),
      ...s.load(),
      level: this.level,
    };
    const signed = signMessage({ purpose: 'announce', target: 'fleet', action: 'offload', args: { ...body } }, s.keys().sign);
    this.link.publish(this.link.topic('offload'), JSON.stringify(signed), { retain: true, qos: 1 });
  }

  /** Counted under the shared refusal names (refusals.ts). */
  private ignore(reason: Refusal): void {
    this.ignored?.inc({ reason });
  }

  private take(topic: string, payload: Buffer): void {
    const device = topic.split('/').at(-2)!;
    if (device === this.link.deviceId) return;
    if (payload.length === 0) return this.peers.offline(device); // cleared by a clean stop
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.ignore('malformed');
    }
    const v = this.verifier.verify(message);
    if (!v.ok) {
      if (v.reason !== 'replayed') this.ignore(v.reason); // a retained copy seen again is no attack
      if (v.reason !== 'replayed' && this.logBudget.take(v.reason))
        this.ctx.log.warn({ device, reason: v.reason, detail: v.detail }, 'peer announcement ignored');
      return;
    }
    if (v.signer.name !== device) return this.ignore('wrong-sender');
    const a = v.message.args as unknown as Announcement;
    if (!v.signer.box || a.box !== toB64(v.signer.box)) return this.ignore('wrong-box');
    const known = this.peers.get(device);
    const news = !known || !known.online || known.url !== a.url;
    if (
      this.peers.upsert(device, {
        url: a.url,
        source: 'announced',
        models: a.models,
        queue: a.queue,
        level: a.level,
        acceptsModels: a.acceptsModels === true,
      }) &&
      news
    )
      this.ctx.log.info({ peer: device, url: a.url }, 'peer announced');
  }
}
