import type { Component, ComponentContext } from '../core/index.js';
import type { MqttConfig, OutpostConfig } from '../config/index.js';
import { ReactionLimit, type MqttLink } from '../mqtt/index.js';
import { ResultSelector } from '../resultSelector.js';
import { summariseOutput } from '../resultSummary.js';
import { CommandHandler, type CommandTargets } from './commands.js';
import { discoveryMessages, HA_STATUS_TOPIC } from './homeAssistant.js';
import { guarded } from '../guarded.js';
import { errorMessage } from '../errors.js';
import { splitStatus } from './telemetryMessage.js';

/**
 * The node on the broker: its birth (what `status` carries while online), telemetry every interval (the same
 * figures as /status: one function builds both), selected results and governor transitions as events, signed
 * commands, and Home Assistant discovery when asked for.
 */
/** What the node says of itself in its birth message. */
export interface NodeAbout {
  version: string;
  startedAt: number;
}

export class FleetTelemetry implements Component {
  readonly name = 'fleet';
  private timer: NodeJS.Timeout | null = null;
  private mqtt: MqttConfig;
  private readonly events: ResultSelector;
  private readonly commands: CommandHandler;
  /** the facts last published (retained), to publish them again only when they change */
  private factsSent = '';

  constructor(
    private readonly ctx: ComponentContext,
    mqtt: Readonly<MqttConfig>,
    private readonly link: MqttLink,
    private readonly targets: CommandTargets,
    private readonly about: NodeAbout,
  ) {
    this.mqtt = mqtt;
    this.events = new ResultSelector(this.mqtt.events);
    this.commands = new CommandHandler(ctx, link, targets, this.mqtt.commandWindowSeconds * 1000);
  }

  async start(): Promise<void> {
    this.link.setBirth(() => this.birth());
    this.commands.start(this.name);
    const eventsTopic = this.link.topic('events');
    this.ctx.bus.on('result', this.name, ({ result: r }) => {
      if (!this.events.select(r)) return;
      const event = {
        type: 'result',
        camera: r.camera,
        frameId: r.frameId,
        capturedAt: r.capturedAt,
        summary: summariseOutput(r.output),
        output: r.output,
        variant: r.variant,
        placement: r.placement,
      };
      this.link.publish(eventsTopic, JSON.stringify(event));
    });
    this.ctx.bus.on('governor.transition', this.name, (t) =>
      this.link.publish(eventsTopic, JSON.stringify({ type: 'governor', ...t, at: this.ctx.clock.now() })),
    );
    if (this.mqtt.homeAssistant) {
      this.link.onConnect(this.name, () => this.publishDiscovery());
      // anyone on the broker can say `online` here: discovery is republished at most every 30 s, however often
      const asked = new ReactionLimit(30_000);
      this.link.subscribe(HA_STATUS_TOPIC, this.name, (_t, payload) => {
        if (payload.toString() === 'online' && asked.take(this.ctx.clock.now())) this.publishDiscovery();
      });
    }
    this.link.onConnect(this.name, () => this.publishFacts(true));
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.link.off(this.name);
    this.commands.stop();
  }

  reload(config: Readonly<OutpostConfig>): void {
    const next = config.telemetry.mqtt;
    if (!next) return;
    const interval = next.telemetryIntervalSeconds !== this.mqtt.telemetryIntervalSeconds;
    this.mqtt = next;
    this.events.configure(next.events);
    if (interval) this.schedule();
  }

  /**
   * The telemetry topic's figures (those of /status without the last result, which events carry) and the facts
   * topic's body (what /status says that does not change from one interval to the next).
   */
  messages(): { telemetry: Record<string, unknown>; facts: Record<string, unknown> } {
    const { lastResult: _omitted, ...rest } = this.targets.status();
    const { facts, figures } = splitStatus(rest);
    return {
      telemetry: { ...figures, intervalSeconds: this.mqtt.telemetryIntervalSeconds, at: new Date(this.ctx.clock.now()).toISOString() },
      facts: { node: this.link.deviceId, startedAt: new Date(this.about.startedAt).toISOString(), ...facts },
    };
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    const topic = this.link.topic('telemetry');
    const publish = guarded(
      () => {
        const { telemetry, facts } = this.messages();
        this.link.publish(topic, JSON.stringify(telemetry));
        this.publishFacts(false, facts);
      },
      (err) => this.ctx.log.warn({ err: errorMessage(err) }, 'telemetry not published; trying again on the next tick'),
    );
    this.timer = setInterval(publish, this.mqtt.telemetryIntervalSeconds * 1000);
    this.timer.unref();
  }

  /** On every connect (a broker may have lost them), else only when they changed (a variant was built). */
  private publishFacts(always: boolean, facts = this.messages().facts): void {
    const body = JSON.stringify(facts);
    if (!always && body === this.factsSent) return;
    this.factsSent = body;
    this.link.publish(this.link.topic('facts'), body, { retain: true, qos: 1 });
  }

  private birth(): Record<string, unknown> {
    const s = this.targets.status() as {
      provider?: string;
      precision?: { rung?: string; variants?: Record<string, string[]> };
      cameras?: Record<string, unknown>;
    };
    return {
      version: this.about.version,
      startedAt: new Date(this.about.startedAt).toISOString(),
      provider: s.provider ?? null,
      precision: s.precision?.rung ?? 'fp32',
      models: s.precision?.variants ?? {},
      cameras: this.targets.cameras(),
    };
  }

  private publishDiscovery(): void {
    for (const m of discoveryMessages(this.link, this.targets.cameras(), this.about.version)) this.link.publish(m.topic, m.payload, { retain: true, qos: 1 });
  }
}
