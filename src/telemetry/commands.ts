import type { IPublishPacket } from 'mqtt';
import { Counter } from 'prom-client';
import type { ComponentContext } from '../core/index.js';
import { join } from 'node:path';
import {
  Keyring,
  MessageVerifier,
  REFUSAL_REASONS,
  ReplayLedger,
  SealedEnvelope,
  signAnswer,
  type AnswerFields,
  type NodeKeys,
  type SignedMessage,
  type TrustedKey,
  type Verdict,
} from '../crypto/index.js';
import { errorMessage } from '../errors.js';
import { isSafeTopic, type MqttLink } from '../mqtt/index.js';
import { RUNGS, type Rung } from '../vocabulary.js';
import { RefusalBudget } from '../refusalBudget.js';
import type { Refusal } from '../refusals.js';

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
export const COMMAND_REFUSALS = [...REFUSAL_REASONS, 'too-large', 'unknown-action', 'bad-arguments', 'invalid-config'] as const satisfies readonly Refusal[];

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

const ANSWERABLE_ACTION = /^[A-Za-z0-9_-]{1,64}$/;
const CORRELATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

interface Reply {
  topic: string;
  correlationData?: Buffer;
  correlationId?: string;
}

/**
 * Commands on `<base>/<device>/command/<action>`. Only a fresh message signed by a keyring key with role
 * `operator`, for this device and this action, runs; it is written to the replay ledger (state dir) before it
 * acts, so a captured command never runs twice, even after a restart or SIGKILL, and never after a newer one.
 * Answers are signed by this device and bind the command's nonce; they go only to this device's own
 * `<base>/<device>/response/…` (the MQTT v5 response topic when it is there, with its correlation data; else
 * response/<action>), and only for a message whose signature held: junk gets nothing published anywhere.
 * Every refusal is counted; logging and answering them is bounded (RefusalBudget).
 */
export class CommandHandler {
  private refused: Counter<'reason'> | null = null;
  private accepted: Counter<'action'> | null = null;
  private readonly verifier: MessageVerifier;
  private readonly ledger: ReplayLedger;
  private readonly budget: RefusalBudget;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly link: MqttLink,
    private readonly targets: CommandTargets,
    windowMs: number,
  ) {
    this.ledger = new ReplayLedger(join(ctx.stateDir, 'command-replay.json'), windowMs);
    this.verifier = new MessageVerifier({
      keyring: new Keyring(ctx.config.keyring),
      purpose: 'command',
      role: 'operator',
      target: link.deviceId,
      windowMs,
      now: () => ctx.clock.now(),
      replay: this.ledger,
    });
    this.budget = new RefusalBudget(
      (suppressed, byReason, seconds) =>
        ctx.log.warn({ suppressed, byReason }, `suppressed ${suppressed} command refusals in ${seconds} s (all counted in metrics)`),
      () => ctx.clock.now(),
    );
  }

  start(owner: string): void {
    const problem = this.ledger.load(this.ctx.clock.now());
    if (problem) this.ctx.log.error({ file: 'command-replay.json' }, problem);
    const registers = [this.ctx.registry];
    this.refused = new Counter({ name: 'outpost_commands_refused_total', help: 'Commands refused, by reason', labelNames: ['reason'], registers });
    this.accepted = new Counter({ name: 'outpost_commands_total', help: 'Commands run, by action', labelNames: ['action'], registers });
    for (const r of COMMAND_REFUSALS) this.refused.inc({ reason: r }, 0);
    this.link.subscribe(this.link.filter('command', '+'), owner, (topic, payload, packet) => {
      this.handle(topic, payload, packet).catch((err: unknown) => this.ctx.log.error({ err: errorMessage(err) }, 'command handling failed'));
    });
  }

  stop(): void {
    this.budget.flush();
  }

  private async handle(topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    const action = topic.split('/').pop()!;
    if (payload.length > MAX_COMMAND_BYTES) return this.refuse('too-large', `${payload.length} bytes; at most ${MAX_COMMAND_BYTES}`);
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.refuse('malformed', 'not JSON');
    }
    let verdict: Verdict;
    try {
      verdict = this.verifier.verify(message);
    } catch (err) {
      // the replay ledger could not be written (only an authentic message gets that far): nothing runs unremembered
      this.ctx.log.error({ action, err: errorMessage(err) }, 'command not run');
      return this.respond({ message: message as SignedMessage, action, packet }, { status: 'error', error: { reason: 'failed', message: errorMessage(err) } });
    }
    if (!verdict.ok) return this.refuse(verdict.reason, verdict.detail, verdict, action, packet);
    const m: SignedMessage = verdict.message;
    const answer = { message: m, action, packet };
    if (m.action !== action) return this.refuse('malformed', `published on command/${action} but signed for ${m.action}`, verdict, action, packet);
    const run = ACTIONS[action];
    if (!run) return this.refuse('unknown-action', `actions: ${Object.keys(ACTIONS).join(', ')}`, verdict, action, packet);
    try {
      const data = await run(m.args, this.targets, verdict.signer, this.link.deviceId);
      this.accepted?.inc({ action });
      this.ctx.log.info({ action, operator: verdict.signer.name }, 'command done');
      this.respond(answer, { status: 'ok', data });
    } catch (err) {
      if (err instanceof BadArguments) return this.refuse('bad-arguments', err.message, verdict, action, packet);
      if (err instanceof InvalidConfig) return this.refuse('invalid-config', err.message, verdict, action, packet, { problems: err.problems });
      this.ctx.log.error({ action, operator: verdict.signer.name, err: errorMessage(err) }, 'command failed');
      this.respond(answer, { status: 'error', error: { reason: 'failed', message: errorMessage(err) } });
    }
  }

  /**
   * Counts every refusal; logs and answers only within the budget, and answers only a message whose signature
   * holds (checked here, within the budget, when the refusal came before the check).
   */
  private refuse(reason: Refusal, detail: string, verdict?: Verdict, action?: string, packet?: IPublishPacket, more: Record<string, unknown> = {}): void {
    this.refused?.inc({ reason });
    if (!this.budget.take(reason)) return;
    const claim = verdict?.ok ? verdict : verdict?.message && verdict.signer ? { message: verdict.message, signer: verdict.signer } : null;
    const authentic = claim !== null && (verdict!.ok || verdict!.authentic || this.verifier.authentic(claim.message, claim.signer));
    this.ctx.log.warn({ reason, detail, operator: authentic ? claim.signer.name : undefined }, 'command refused');
    if (authentic && action && packet)
      this.respond({ message: claim.message, action, packet }, { status: 'refused', error: { reason, message: detail, ...more } });
  }

  /** This device's own response subtree only: the v5 response topic when it lies there, else response/<action>. */
  private replyTo(action: string, message: SignedMessage, packet: IPublishPacket): Reply {
    const asked = packet.properties?.responseTopic;
    const own = `${this.link.base}/${this.link.deviceId}/response/`;
    const safe = typeof asked === 'string' && asked.startsWith(own) && isSafeTopic(asked);
    const correlationId = (message as { correlationId?: unknown }).correlationId;
    return {
      topic: safe ? asked : this.link.topic('response', ANSWERABLE_ACTION.test(action) ? action : 'invalid'),
      correlationData: packet.properties?.correlationData,
      correlationId: typeof correlationId === 'string' && CORRELATION_ID.test(correlationId) ? correlationId : undefined,
    };
  }

  /** Publishes an answer signed by this device, bound to the command's nonce. */
  private respond(to: { message: SignedMessage; action: string; packet: IPublishPacket }, body: Pick<AnswerFields, 'status' | 'data' | 'error'>): void {
    const reply = this.replyTo(to.action, to.message, to.packet);
    try {
      const fields: AnswerFields = { device: this.link.deviceId, action: to.action, request: to.message.nonce, answeredAt: this.ctx.clock.now(), ...body };
      const keys = this.targets.keys();
      // without keys (outpost keys generate) an answer cannot be signed; outpost command ignores it, a log line says why
      if (!keys) this.ctx.log.warn('this node has no keys: its command answers are unsigned, and outpost command ignores them');
      const answer = keys ? signAnswer(fields, keys.sign) : fields;
      const payload = JSON.stringify({ ...answer, ...(reply.correlationId ? { correlationId: reply.correlationId } : {}) });
      this.link.publish(reply.topic, payload, { qos: 1, properties: reply.correlationData ? { correlationData: reply.correlationData } : undefined });
    } catch (err) {
      this.ctx.log.error({ topic: reply.topic, err: errorMessage(err) }, 'cannot answer a command');
    }
  }
}
