import type { IPublishPacket } from 'mqtt';
import { Counter } from 'prom-client';
import type { ComponentContext } from '../component.js';
import { Keyring, MessageVerifier, REFUSAL_REASONS, SealedEnvelope, type NodeKeys, type SignedMessage, type TrustedKey } from '../crypto/index.js';
import { errorMessage } from '../errors.js';
import { isSafeTopic, type MqttLink } from '../mqtt/index.js';
import { RUNGS, type Rung } from '../vocabulary.js';

/** What commands act on; the composition root hands these in, so this module imports none of those parts. */
export interface CommandTargets {
  status(): Record<string, unknown>;
  reloadConfig(): Promise<{ applied: string[]; needRestart: string[] }>;
  /** What each pipeline runs at the rung (null: the governor's), or why it is refused (no variant of it here). */
  setPrecision(rung: Rung | null): { ok: true; runs: Record<string, string>; fp32Models: string[] } | { ok: false; reason: string };
  pauseCamera(name: string): void;
  resumeCamera(name: string): void;
  cameras(): string[];
  /** The newest frame of a camera, as delivered (JPEG). */
  latestFrame(camera: string): { data: Buffer; capturedAt: number } | null;
  rebenchmark(): Promise<unknown>;
  /** Starts a restart and returns at once (the daemon logs and handles its own failure). */
  restart(): void;
  /** The configuration file's problems as `FILE:LINE:COL: path: message` lines; none when it is valid. */
  configProblems(): string[];
  /** This node's keys (null when it has none: snapshots cannot be sealed). */
  keys(): NodeKeys | null;
}

/** A refusal: one of the verifier's, or one the dispatcher adds. */
export const COMMAND_REFUSALS = [...REFUSAL_REASONS, 'too-large', 'unknown-action', 'bad-arguments', 'invalid-config'] as const;
type Refusal = (typeof COMMAND_REFUSALS)[number];

export const MAX_COMMAND_BYTES = 64 * 1024;

class BadArguments extends Error {}

/** The configuration file is broken: a restart or reload would take the node down, so it is refused. */
class InvalidConfig extends Error {
  constructor(readonly problems: string[]) {
    super(`the configuration file is invalid; still running the old configuration: ${problems.join('; ')}`);
  }
}

const checkConfigFile = (t: CommandTargets): void => {
  const problems = t.configProblems();
  if (problems.length > 0) throw new InvalidConfig(problems);
};

type Action = (args: Record<string, unknown>, t: CommandTargets, signer: TrustedKey, device: string) => Promise<unknown> | unknown;

const cameraArg = (args: Record<string, unknown>, t: CommandTargets): string => {
  const name = args.camera;
  if (typeof name !== 'string' || !t.cameras().includes(name)) throw new BadArguments(`args.camera must name a camera: ${t.cameras().join(', ') || 'none'}`);
  return name;
};

/** The actions an operator may ask for, one entry each. */
export const ACTIONS: Record<string, Action> = {
  status: (_a, t) => t.status(),
  'reload-config': (_a, t) => (checkConfigFile(t), t.reloadConfig()),
  'set-precision': (args, t) => {
    const rung = args.precision;
    if (rung !== 'auto' && !RUNGS.includes(rung as Rung)) throw new BadArguments(`args.precision must be one of ${[...RUNGS, 'auto'].join(', ')}`);
    const choice = t.setPrecision(rung === 'auto' ? null : (rung as Rung));
    if (!choice.ok) throw new BadArguments(choice.reason);
    const holds = rung === 'auto' ? 'the governor decides again' : 'until set-precision auto';
    return { precision: rung, runs: choice.runs, ...(choice.fp32Models.length > 0 ? { fp32Models: choice.fp32Models } : {}), holds };
  },
  'pause-camera': (args, t) => (t.pauseCamera(cameraArg(args, t)), { paused: args.camera }),
  'resume-camera': (args, t) => (t.resumeCamera(cameraArg(args, t)), { resumed: args.camera }),
  snapshot: (args, t, signer, device) => {
    const camera = cameraArg(args, t);
    const frame = t.latestFrame(camera);
    if (!frame) throw new BadArguments(`camera ${camera} has delivered no frame yet`);
    const keys = t.keys();
    if (!keys) throw new Error('this node has no keys to seal with (outpost keys generate)');
    if (!signer.box) throw new BadArguments(`keyring entry ${signer.name} has no box key to seal the snapshot to`);
    const header = { purpose: 'snapshot', device, camera, contentType: 'image/jpeg', capturedAt: frame.capturedAt };
    return { envelope: new SealedEnvelope(keys.box).seal(header, frame.data, signer.box).toString('base64'), bytes: frame.data.length };
  },
  rebenchmark: (_a, t) => t.rebenchmark(),
  restart: (_a, t) => {
    checkConfigFile(t);
    setImmediate(() => t.restart()); // answer first, then restart
    return { restarting: true };
  },
};

/**
 * Commands on `<base>/<device>/command/<action>`, answered on `<base>/<device>/response/<action>` (or an MQTT v5
 * response topic under the base topic, with its correlation data; a `correlationId` field for v3 clients). Only a
 * fresh message signed by a keyring key with role `operator`, for this device and this action, runs; everything
 * else is refused with a reason, counted, and leaves the daemon as it was.
 */
export class CommandHandler {
  private refused: Counter<'reason'> | null = null;
  private accepted: Counter<'action'> | null = null;
  private readonly verifier: MessageVerifier;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly link: MqttLink,
    private readonly targets: CommandTargets,
    windowMs: number,
  ) {
    this.verifier = new MessageVerifier({
      keyring: new Keyring(ctx.config.keyring),
      purpose: 'command',
      role: 'operator',
      target: link.deviceId,
      windowMs,
      now: () => ctx.clock.now(),
    });
  }

  start(owner: string): void {
    const registers = [this.ctx.registry];
    this.refused = new Counter({ name: 'outpost_commands_refused_total', help: 'Commands refused, by reason', labelNames: ['reason'], registers });
    this.accepted = new Counter({ name: 'outpost_commands_total', help: 'Commands run, by action', labelNames: ['action'], registers });
    for (const r of COMMAND_REFUSALS) this.refused.inc({ reason: r }, 0);
    this.link.subscribe(this.link.filter('command', '+'), owner, (topic, payload, packet) => void this.handle(topic, payload, packet));
  }

  private async handle(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const action = topic.split('/').pop()!;
    const reply = this.replyTo(action, packet);
    if (payload.length > MAX_COMMAND_BYTES) return this.refuse(reply, 'too-large', `${payload.length} bytes; at most ${MAX_COMMAND_BYTES}`);
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.refuse(reply, 'malformed', 'not JSON');
    }
    reply.correlationId =
      typeof (message as { correlationId?: unknown })?.correlationId === 'string' ? (message as { correlationId: string }).correlationId : undefined;
    const verdict = this.verifier.verify(message);
    if (!verdict.ok) return this.refuse(reply, verdict.reason, verdict.detail);
    const m: SignedMessage = verdict.message;
    if (m.action !== action) return this.refuse(reply, 'malformed', `published on command/${action} but signed for ${m.action}`);
    const run = ACTIONS[action];
    if (!run) return this.refuse(reply, 'unknown-action', `actions: ${Object.keys(ACTIONS).join(', ')}`);
    try {
      const data = await run(m.args, this.targets, verdict.signer, this.link.deviceId);
      this.accepted?.inc({ action });
      this.ctx.log.info({ action, operator: verdict.signer.name }, 'command done');
      this.respond(reply, { status: 'ok', data });
    } catch (err) {
      if (err instanceof BadArguments) return this.refuse(reply, 'bad-arguments', err.message);
      if (err instanceof InvalidConfig) return this.refuse(reply, 'invalid-config', err.message, { problems: err.problems });
      this.ctx.log.error({ action, operator: verdict.signer.name, err: errorMessage(err) }, 'command failed');
      this.respond(reply, { status: 'error', error: { reason: 'failed', message: errorMessage(err) } });
    }
  }

  /** Where the answer goes: the v5 response topic when it stays under the base topic, else response/<action>. */
  private replyTo(action: string, packet: IPublishPacket): { topic: string; correlationData?: Buffer; correlationId?: string } {
    const asked = packet.properties?.responseTopic;
    const safe = typeof asked === 'string' && asked.startsWith(`${this.link.base}/`) && isSafeTopic(asked);
    const fallback = /^[A-Za-z0-9_-]{1,64}$/.test(action) ? this.link.topic('response', action) : this.link.topic('response', 'invalid');
    return { topic: safe ? asked : fallback, correlationData: packet.properties?.correlationData };
  }

  private refuse(reply: ReturnType<CommandHandler['replyTo']>, reason: Refusal, message: string, more: Record<string, unknown> = {}): void {
    this.refused?.inc({ reason });
    this.ctx.log.warn({ reason, detail: message, topic: reply.topic }, 'command refused');
    this.respond(reply, { status: 'refused', error: { reason, message, ...more } });
  }

  private respond(reply: ReturnType<CommandHandler['replyTo']>, body: Record<string, unknown>): void {
    const payload = JSON.stringify({ ...body, ...(reply.correlationId ? { correlationId: reply.correlationId } : {}) });
    try {
      this.link.publish(reply.topic, payload, { qos: 1, properties: reply.correlationData ? { correlationData: reply.correlationData } : undefined });
    } catch (err) {
      this.ctx.log.error({ topic: reply.topic, err: errorMessage(err) }, 'cannot answer a command');
    }
  }
}
