import { readFileSync, writeFileSync } from 'node:fs';
import { Backoff } from '../backoff.js';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { Counter, Gauge } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import type { MqttConfig } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { loginRefusal, redactUrl } from './brokerErrors.js';
import { MAX_INBOUND_BYTES, ReactionLimit, statusClaim } from './inboundLimits.js';
import { TAKEOVER_HINT, TakeoverWatch } from './takeoverWatch.js';
import { assertTopic, matches } from './topics.js';
import { withinBudget } from './withinBudget.js';

/** How long a stop waits for the broker to take the offline status and the DISCONNECT (the daemon's budget is 9 s). */
const STOP_BUDGET_MS = 2000;

export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

export interface PublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
  properties?: IClientPublishOptions['properties'];
}

interface Queued {
  topic: string;
  payload: Buffer;
  opts: PublishOptions;
}

export interface MqttLinkOptions {
  mqtt: MqttConfig;
  deviceId: string;
  /** Random delays are drawn from here (tests pin it). */
  random?: () => number;
}

/**
 * The node's one broker connection (mqtt.js v5). It knows nothing of what is published, only how a node stays
 * visible: a retained `<base>/<device>/status` birth on every connection, a last will that flips it to offline
 * on an unclean disconnect, a birth sequence (Sparkplug's bdSeq, kept across restarts) in both, and a watch on
 * its own status topic so a late will from an older connection is overwritten at once. Reconnects use
 * exponential backoff with jitter (mqtt.js's own is a fixed 1 s); while away, what is published waits in a
 * bounded queue (oldest dropped, counted). Publishing never blocks the caller, and no topic with a wildcard is
 * ever published to.
 */
export class MqttLink implements Component {
  readonly name = 'mqtt';
  readonly statusTopic: string;
  private client: MqttClient | null = null;
  private connected = false;
  private stopping = false;
  private bdSeq = 0;
  private readonly backoff: Backoff;
  private retry: NodeJS.Timeout | null = null;
  private readonly queue: Queued[] = [];
  private readonly retained = new Map<string, Queued>();
  private readonly subscriptions = new Map<string, { owner: string; handler: MessageHandler }[]>();
  private readonly connectHooks: { owner: string; fn: () => void }[] = [];
  private birth: () => Record<string, unknown> = () => ({});
  private readonly counts = { connects: 0, disconnects: 0, takeovers: 0, dropped: 0, tooLarge: 0, lastError: null as string | null };
  private readonly rebirths = new ReactionLimit(5000);
  private loggedRefusal: string | null = null;
  private readonly takeovers = new TakeoverWatch();
  private droppedMetric: Counter<'reason'> | null = null;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly opts: MqttLinkOptions,
  ) {
    this.statusTopic = this.topic('status');
    this.backoff = new Backoff(opts.mqtt.reconnect, opts.random);
  }

  /** `<base>/<device>/<levels…>`, each level checked: no wildcard can reach a topic this node publishes to. */
  topic(...levels: string[]): string {
    return assertTopic([this.opts.mqtt.baseTopic, this.opts.deviceId, ...levels].join('/'));
  }

  /** A subscription filter under `<base>/<device>/`: `+` and `#` levels allowed here, and only here. */
  filter(...levels: string[]): string {
    const fixed = levels.filter((l) => l !== '+' && l !== '#');
    assertTopic([this.opts.mqtt.baseTopic, this.opts.deviceId, ...fixed].join('/'));
    return [this.opts.mqtt.baseTopic, this.opts.deviceId, ...levels].join('/');
  }

  /** `<base>/+/<levels…>`: the same topic of every device under the base topic (to watch the fleet). */
  fleetFilter(...levels: string[]): string {
    assertTopic([this.opts.mqtt.baseTopic, 'x', ...levels].join('/'));
    return [this.opts.mqtt.baseTopic, '+', ...levels].join('/');
  }

  get base(): string {
    return this.opts.mqtt.baseTopic;
  }

  get deviceId(): string {
    return this.opts.deviceId;
  }

  get isConnected(): boolean {
    return this.connected;
  }
  /** Times another client with our id took the session over: the broker was there, someone else had it. */
  readonly takeoverCount = (): number => this.counts.takeovers;

  /** The fields of the online status after `state`, `bdSeq` and `startedAt` (the telemetry component fills them). */
  setBirth(fn: () => Record<string, unknown>): void {
    this.birth = fn;
  }

  /** Called after every (re)connect, once the birth is out: republish what a broker should hold (discovery, announcements). */
  onConnect(owner: string, fn: () => void): void {
    this.connectHooks.push({ owner, fn });
  }

  subscribe(filter: string, owner: string, handler: MessageHandler): void {
    this.subscriptions.set(filter, [...(this.subscriptions.get(filter) ?? []), { owner, handler }]);
    if (this.connected) this.client?.subscribe(filter, { qos: 1 });
  }

  /** Removes an owner's subscriptions and hooks (a component that stops). */
  off(owner: string): void {
    for (const [filter, list] of this.subscriptions) {
      const kept = list.filter((s) => s.owner !== owner);
      if (kept.length === 0) {
        this.subscriptions.delete(filter);
        if (this.connected) this.client?.unsubscribe(filter);
      } else this.subscriptions.set(filter, kept);
    }
    this.connectHooks.splice(0, this.connectHooks.length, ...this.connectHooks.filter((h) => h.owner !== owner));
  }

  /** Fire and forget: sent now when connected, else queued (a retained message keeps only its latest value). */
  publish(topic: string, payload: string | Buffer, opts: PublishOptions = {}): void {
    const msg: Queued = { topic: assertTopic(topic), payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), opts };
    if (this.connected && this.client)
      return void this.client.publish(msg.topic, msg.payload, { qos: opts.qos ?? 0, retain: opts.retain ?? false, properties: opts.properties });
    if (opts.retain) return void this.retained.set(msg.topic, msg);
    if (this.opts.mqtt.offlineQueue === 0) return this.drop('offline');
    if (this.queue.length >= this.opts.mqtt.offlineQueue) {
      this.queue.shift();
      this.drop('queue-full');
    }
    this.queue.push(msg);
  }

  /** Published and acknowledged by the broker (QoS 1), or rejected: for what must not be lost on the way. */
  async publishConfirmed(topic: string, payload: string | Buffer, opts: PublishOptions = {}): Promise<void> {
    if (!this.connected || !this.client) throw new OutpostError('OUTPOST_E_UNREACHABLE', `not connected to ${this.redactedUrl()}`);
    await this.client.publishAsync(assertTopic(topic), Buffer.isBuffer(payload) ? payload : Buffer.from(payload), {
      qos: 1,
      retain: opts.retain ?? false,
      properties: opts.properties,
    });
  }

  async start(): Promise<void> {
    this.bdSeq = this.readBdSeq();
    const registers = [this.ctx.registry];
    const link = this;
    this.droppedMetric = new Counter({
      name: 'outpost_mqtt_dropped_total',
      help: 'Messages dropped while the broker was away',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'outpost_mqtt_connected',
      help: '1 while connected to the broker',
      registers,
      collect() {
        this.set(link.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'outpost_mqtt_connects',
      help: 'Connections made to the broker since start',
      registers,
      collect() {
        this.set(link.counts.connects);
      },
    });
    this.subscribe(this.statusTopic, this.name, (_t, payload) => this.watchOwnStatus(payload));
    this.connect(); // the daemon never waits for the broker
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    if (!client) return;
    const wasConnected = this.connected;
    const clean = (async () => {
      // a clean stop says offline itself: the broker drops the will of a clean disconnect
      if (wasConnected)
        await client
          .publishAsync(this.statusTopic, JSON.stringify({ state: 'offline', bdSeq: this.bdSeq, at: new Date().toISOString() }), { qos: 1, retain: true })
          .catch(() => undefined);
      await client.endAsync(false).catch(() => undefined);
    })();
    const inTime = await withinBudget(clean, STOP_BUDGET_MS);
    this.connected = false;
    if (inTime) return;
    // a broker that stopped answering (or a dead link not noticed yet) must not hold the daemon's stop
    this.ctx.log.info(
      { url: this.redactedUrl(), waitedMs: STOP_BUDGET_MS },
      'the broker did not answer the clean disconnect; closing the connection (its last will says offline)',
    );
    client.end(true);
  }

  status(): Record<string, unknown> {
    const { connects, disconnects, takeovers, dropped, lastError } = this.counts;
    return {
      mqtt: {
        url: this.redactedUrl(),
        connected: this.connected,
        bdSeq: this.bdSeq,
        connects,
        disconnects,
        takeovers,
        queued: this.queue.length,
        dropped,
        lastError,
      },
    };
  }

  private drop(reason: string): void {
    this.counts.dropped++;
    this.droppedMetric?.inc({ reason });
  }

  private redactedUrl(): string {
    return redactUrl(this.opts.mqtt.url);
  }

  /** A connection error: kept for status; a refused login is logged (once per kind) as such, with what to check. */
  private onError(err: Error): void {
    const refused = loginRefusal(err);
    this.counts.lastError = refused ? `login refused: ${refused}` : errorMessage(err);
    this.takeovers.error(this.counts.lastError);
    if (refused && this.loggedRefusal !== refused)
      this.ctx.log.error(
        { url: this.redactedUrl(), reason: refused },
        'the MQTT broker refused the login; check telemetry.mqtt.username and password and the broker ACL (retrying with backoff)',
      );
    this.loggedRefusal = refused;
  }

  /** From the backoff timer: a connect that throws (a CA file gone …) is noted and tried again, never thrown to the top. */
  private reconnect(): void {
    try {
      this.connect();
    } catch (err) {
      this.counts.lastError = errorMessage(err);
      this.ctx.log.warn({ url: this.redactedUrl(), err: this.counts.lastError }, 'cannot connect to the MQTT broker; retrying');
      this.retry = setTimeout(() => this.reconnect(), this.opts.mqtt.reconnect.maxMs);
      this.retry.unref();
    }
  }

  /** One client per connection: each carries its own bdSeq in its will. */
  private connect(): void {
    if (this.stopping) return;
    this.bdSeq++;
    this.writeBdSeq();
    this.takeovers.attempt();
    const m = this.opts.mqtt;
    const file = (f?: string) => (f ? readFileSync(f) : undefined);
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: this.clientId,
      username: m.username,
      password: m.password,
      ca: file(m.ca),
      cert: file(m.cert),
      key: file(m.key),
      keepalive: m.keepalive,
      reconnectPeriod: 0, // ours has backoff and jitter
      connectTimeout: 10_000,
      clean: true,
      queueQoSZero: false,
      will: { topic: this.statusTopic, payload: Buffer.from(JSON.stringify({ state: 'offline', bdSeq: this.bdSeq })), qos: 1, retain: true },
      properties: { maximumPacketSize: MAX_INBOUND_BYTES },
    };
    const client = mqtt.connect(m.url, options);
    this.client = client;
    client.on('connect', () => this.onConnected(client));
    client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
    client.on('error', (err) => this.onError(err));
    client.on('disconnect', (packet) => this.takeovers.disconnectPacket(packet.reasonCode));
    client.on('close', () => this.onClosed(client));
  }

  private onConnected(client: MqttClient): void {
    if (client !== this.client) return;
    this.connected = true;
    this.counts.connects++;
    this.backoff.reset();
    this.ctx.log.info({ url: this.redactedUrl(), bdSeq: this.bdSeq }, 'connected to the MQTT broker');
    if (this.takeovers.connected()) this.sessionTakenOver('the broker ended our connection and took the next one at once');
    this.publishBirth();
    for (const filter of this.subscriptions.keys()) client.subscribe(filter, { qos: 1 });
    for (const msg of [...this.retained.values(), ...this.queue.splice(0)]) this.publish(msg.topic, msg.payload, msg.opts);
    this.retained.clear();
    for (const h of this.connectHooks) {
      try {
        h.fn();
      } catch (err) {
        this.ctx.log.error({ owner: h.owner, err: errorMessage(err) }, 'an MQTT connect hook failed');
      }
    }
  }

  private publishBirth(): void {
    const birth = { state: 'online', bdSeq: this.bdSeq, ...this.birth() };
    this.client?.publish(this.statusTopic, JSON.stringify(birth), { qos: 1, retain: true });
  }

  private onClosed(client: MqttClient): void {
    if (client !== this.client) return;
    const kind = this.takeovers.closed(this.connected);
    if (this.connected) this.counts.disconnects++;
    if (kind === 'taken-over') this.sessionTakenOver('the broker said so (DISCONNECT 0x8E)');
    else if (kind === 'ended-by-broker') this.ctx.log.info({ url: this.redactedUrl() }, 'the broker ended the connection; reconnecting');
    else if (kind === 'lost' || kind === 'broker-gone')
      this.ctx.log.warn({ url: this.redactedUrl(), err: this.counts.lastError }, 'lost the MQTT broker; reconnecting');
    this.connected = false;
    client.removeAllListeners();
    client.end(true);
    this.client = null;
    if (this.stopping) return;
    this.retry = setTimeout(() => this.reconnect(), this.backoff.next());
    this.retry.unref();
  }

  /** Another client connected with our client id and the broker gave it our session: say so, not "lost the broker". */
  private sessionTakenOver(how: string): void {
    this.counts.takeovers++;
    this.counts.lastError = 'session taken over by another client with the same id';
    this.backoff.slowest(); // two clients taking turns: slow the flapping down
    const about = { url: this.redactedUrl(), clientId: this.clientId, how, takeovers: this.counts.takeovers, hint: TAKEOVER_HINT };
    this.ctx.log.warn(about, 'the MQTT session was taken over by another client with the same id');
  }

  private get clientId(): string {
    return `outpost-${this.opts.deviceId}`;
  }

  /** A retained status that is not this connection's online (a late will of an older one): say online again, at most every 5 s. */
  private watchOwnStatus(payload: Buffer): void {
    if (!this.connected || this.stopping) return;
    const seen = statusClaim(payload);
    if (seen.state === 'online' && seen.bdSeq === this.bdSeq) return;
    // the last stale status of a burst must not stay on the broker: one more birth when the interval ends
    if (!this.rebirths.takeOrLater(this.ctx.clock.now(), () => this.connected && !this.stopping && this.publishBirth())) return;
    this.ctx.log.info({ seen, suppressedSinceLast: this.rebirths.suppressed }, 'a stale status was on the broker; publishing online again');
    this.rebirths.suppressed = 0;
    this.publishBirth();
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (payload.length > MAX_INBOUND_BYTES) return void this.counts.tooLarge++; // a broker that ignored our maximum packet size
    for (const [filter, list] of this.subscriptions) {
      if (!matches(filter, topic)) continue;
      for (const { owner, handler } of list) {
        try {
          handler(topic, payload, packet);
        } catch (err) {
          this.ctx.log.error({ owner, topic, err: errorMessage(err) }, 'an MQTT message handler failed');
        }
      }
    }
  }

  private bdSeqFile(): string {
    return join(this.ctx.stateDir, 'mqtt-bdseq');
  }

  private readBdSeq(): number {
    try {
      return Number.parseInt(readFileSync(this.bdSeqFile(), 'utf8'), 10) || 0;
    } catch {
      return 0;
    }
  }

  private writeBdSeq(): void {
    try {
      writeFileSync(this.bdSeqFile(), `${this.bdSeq}\n`);
    } catch (err) {
      this.ctx.log.warn({ err: errorMessage(err) }, 'cannot keep the MQTT birth sequence in the state folder');
    }
  }
}
