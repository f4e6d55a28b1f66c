import { readFileSync, renameSync, rmSync } from 'node:fs';
import { Counter } from 'prom-client';
import type { Component, ComponentContext, ContextFor } from '../core/index.js';
import type { NodeKeys } from '../crypto/index.js';
import { errorMessage } from '../errors.js';
import { logRejection } from '../lastResort.js';
import type { MqttLink } from '../mqtt/index.js';
import type { PipelineSet } from '../pipeline/index.js';
import { RefusalBudget } from '../refusalBudget.js';
import { candidatePath, nextConfigText, validateCandidate } from './configChange.js';
import { ConfirmWatch } from './confirmWatch.js';
import { DeployState, OUTCOMES, ROLLBACK_REASONS, type Finished, type Outcome, type RollbackReason } from './deployState.js';
import { targets as targetsBoard, type Deployment } from './document.js';
import { writeDurable } from '../durableFile.js';
import { FetchRefused } from './fileFetch.js';
import { DEPLOY_REFUSALS, DeployIntake, type DeployRefusal } from './intake.js';
import { fetchFiles, modelPatch, shadowModels } from './modelSteps.js';
import type { ShadowFigures } from './shadowRun.js';
import { signedReport } from './report.js';
import { restoreGoodConfig } from './startRecovery.js';

/** What a deployment acts on: the daemon itself (its config file, reload and restart paths, keys, status). */
export interface DeployHost {
  status(): Record<string, unknown>;
  keys(): NodeKeys | null;
  reloadFromFile(): Promise<{ applied: string[]; needRestart: string[] }>;
  restart(): Promise<void>;
}

const TICK_MS = 1000;

/**
 * Signed, staged deployments of config on this board (docs/deployments.md). Each step is written to the state
 * folder before it acts (recoverDeployment finishes a cut-short one at the next start); the last good config is
 * kept until the next deployment is applied; the confirm window watches results, errors, latency, the broker and
 * the collector and restores the last good config by itself. Every step is reported, signed by this device, on
 * the retained `<base>/<device>/deployment` topic and as an event.
 */
export class Deployer implements Component {
  readonly name = 'deploy';
  private readonly state: DeployState;
  private readonly intake: DeployIntake;
  private readonly budget: RefusalBudget;
  private metrics: { outcomes: Counter<'outcome'>; rollbacks: Counter<'reason'>; refused: Counter<'reason'> } | null = null;
  private watch: ConfirmWatch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private operatorConfirmed = false;
  private busy = false;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly link: MqttLink,
    private readonly host: DeployHost,
    private readonly pipelines: PipelineSet | null = null,
  ) {
    this.state = new DeployState(ctx.stateDir);
    this.intake = new DeployIntake(ctx.config, ctx.stateDir, link.deviceId, () => ctx.clock.now());
    this.budget = new RefusalBudget(
      (suppressed, byReason, seconds) =>
        ctx.log.warn({ suppressed, byReason }, `suppressed ${suppressed} deployment refusals in ${seconds} s (all counted in metrics)`),
      () => ctx.clock.now(),
    );
  }

  async start(): Promise<void> {
    const registers = [this.ctx.registry];
    this.metrics = {
      outcomes: new Counter({ name: 'outpost_deployments_total', help: 'Deployments ended on this board, by outcome', labelNames: ['outcome'], registers }),
      rollbacks: new Counter({ name: 'outpost_rollbacks_total', help: 'Deployments rolled back, by reason', labelNames: ['reason'], registers }),
      refused: new Counter({ name: 'outpost_deployments_refused_total', help: 'Deployment messages refused, by reason', labelNames: ['reason'], registers }),
    };
    for (const o of OUTCOMES) this.metrics.outcomes.inc({ outcome: o }, 0);
    for (const r of ROLLBACK_REASONS) this.metrics.rollbacks.inc({ reason: r }, 0);
    for (const r of DEPLOY_REFUSALS) this.metrics.refused.inc({ reason: r }, 0);
    const problem = this.intake.load(this.ctx.clock.now());
    if (problem) this.ctx.log.error({ file: 'deploy-replay.json' }, problem);
    try {
      this.state.load();
    } catch (err) {
      // the board runs on; the last good config (deploy/good.yaml) is left where it is
      this.ctx.log.error(
        { dir: this.state.dir, err: errorMessage(err) },
        'the deployment state is unreadable; starting from none (move state.json away to silence this)',
      );
    }
    this.countFinished();
    const p = this.state.data.pending;
    if (p && p.step !== 'confirming')
      this.finish({ id: p.id, outcome: 'failed', reason: 'interrupted', detail: `stopped during ${p.step}; nothing was applied` });
    if (this.state.data.pending?.step === 'confirming') this.watchConfirm();
    this.link.subscribe(this.link.filter('deploy', '+'), this.name, (topic, payload) => this.onMessage(topic.split('/').pop()!, payload));
    // a report queued while the broker was away can be lost with a connection that dies at once: the retained
    // report is published again on every (re)connect, so `deploy status` never keeps an old step
    this.link.onConnect(this.name, () => this.publishReport());
    this.report();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.link.off(this.name);
    this.ctx.bus.off(this.name);
    this.budget.flush();
  }

  status(): Record<string, unknown> {
    const { current, previous, pending, last } = this.state.data;
    const p = pending && {
      id: pending.id,
      step: pending.step,
      operator: pending.operator,
      deadline: pending.deadline ? new Date(pending.deadline).toISOString() : null,
    };
    const labels = this.ctx.config.node.labels ?? {};
    return { deployment: { current, previous, pending: p, last }, labels };
  }

  private onMessage(action: string, payload: Buffer): void {
    const m = this.intake.open(action, payload);
    if (!m.ok) return this.refuse(m.reason, m.detail);
    if (m.action !== 'create') return m.action === 'confirm' ? this.operatorConfirm(m.id) : this.operatorRollback(m.id);
    const p = this.state.data.pending;
    if (!targetsBoard(m.doc, this.link.deviceId, this.ctx.config.node.labels ?? {}))
      return this.refuse('not-targeted', `${m.doc.id} does not select ${this.link.deviceId}`);
    if (p || this.busy) return this.refuse('busy', `${p?.id ?? 'another deployment'} is under way; ${m.doc.id} was not started`);
    this.busy = true;
    this.run(m.doc, m.operator.name)
      .catch((err: unknown) => this.fail(m.doc.id, 'failed', errorMessage(err)))
      .finally(() => (this.busy = false))
      .catch(logRejection(this.ctx.log, `deployment ${m.doc.id}`));
  }

  private refuse(reason: DeployRefusal, detail: string): void {
    this.metrics?.refused.inc({ reason });
    this.metrics?.outcomes.inc({ outcome: 'refused' });
    if (this.budget.take(reason)) this.ctx.log.warn({ reason, detail }, 'deployment refused');
  }

  /** Steps 1–5: received, fetched, validated, (shadow), applying; then the confirm window. */
  private async run(doc: Deployment, operator: string): Promise<void> {
    const now = this.ctx.clock.now();
    this.state.save({ ...this.state.data, pending: { id: doc.id, step: 'received', doc, operator, at: now } });
    this.report();
    await this.hold('received');
    let models: Record<string, string>;
    try {
      models = await fetchFiles(doc, this.state.filesDir, this.link);
    } catch (err) {
      if (!(err instanceof FetchRefused)) throw err;
      if (err.reason !== 'unreachable') this.metrics?.refused.inc({ reason: err.reason });
      return this.fail(doc.id, err.reason, err.message);
    }
    this.state.step('fetched');
    this.report();
    const file = this.configFile();
    const base = doc.config ? nextConfigText(readFileSync(file, 'utf8'), doc.config) : readFileSync(file, 'utf8');
    const text = Object.keys(models).length > 0 ? nextConfigText(base, modelPatch(models)) : base;
    const problems = validateCandidate(file, text, doc.id, this.ctx.config);
    if (problems.length > 0) return this.fail(doc.id, 'invalid-config', 'the new configuration is invalid; nothing was applied', problems);
    this.state.step('validated');
    this.report();
    await this.hold('validated');
    if (Object.keys(models).length > 0 && this.pipelines) {
      this.state.step('shadow');
      this.report();
      const { figures, failure } = await shadowModels(this.ctx, this.pipelines, doc, models);
      if (failure) return this.fail(doc.id, 'shadow-failed', `${failure}; nothing was swapped`, undefined, figures);
      this.state.step('shadow', { shadow: figures, swapped: Object.keys(models) });
      for (const [model, path] of Object.entries(models)) await this.pipelines.replaceModel(model, path);
    }
    await this.apply(file);
  }

  /**
   * TEST HOOK, documented in docs/deployments.md: OUTPOST_TEST_DEPLOY_HOLD=<step> parks a deployment right after
   * that step is written, so a test can SIGKILL the board there. Never set on a real board.
   */
  private async hold(step: string): Promise<void> {
    if (process.env.OUTPOST_TEST_DEPLOY_HOLD !== step) return;
    this.ctx.log.warn({ step }, 'deployment held (OUTPOST_TEST_DEPLOY_HOLD)');
    await new Promise<never>(() => undefined);
  }

  /** The last good config kept, the candidate renamed into place, the window's deadline written, then reload or restart. */
  private async apply(file: string): Promise<void> {
    writeDurable(this.state.goodConfig, readFileSync(file));
    const before = { broker: this.link.isConnected, collector: this.collectorReachable() === true, results: this.resultsBefore() };
    this.state.step('applying', { before });
    await this.hold('applying');
    renameSync(candidatePath(file), file);
    await this.hold('renamed');
    const p = this.state.step('confirming', { deadline: this.ctx.clock.now() + this.state.data.pending!.doc.gates.confirmSeconds * 1000, boots: 0 });
    this.ctx.log.info({ id: p.id, before, confirmSeconds: p.doc.gates.confirmSeconds }, 'deployment applied; confirm window open');
    this.report();
    this.watchConfirm();
    this.reloadOrRestart(p.swapped); // a model swapped live needs no restart
  }

  /** A restart makes a new registry: what ended just before it is counted by the deployer that starts next. */
  private reloadOrRestart(swapped: readonly string[] = [], mustRestart = false): void {
    const failed = logRejection(this.ctx.log, 'applying a deployment');
    const hotSwapped = (path: string) => swapped.some((m) => path === `models.${m}.file` || path === `models.${m}`);
    this.host
      .reloadFromFile()
      .then((r) => (mustRestart || r.needRestart.some((p) => !hotSwapped(p)) ? this.host.restart() : this.countFinished()))
      .catch(failed);
  }

  private watchConfirm(): void {
    const p = this.state.data.pending!;
    const takeoversBefore = this.link.takeoverCount();
    this.watch = new ConfirmWatch(
      p,
      {
        // a session taken over by another client with our id is the broker answering, not our config failing to
        // reach it: a stranger who steals the client id must not roll a good deployment back
        brokerConnected: () => this.link.isConnected || this.link.takeoverCount() > takeoversBefore,
        collectorReachable: () => this.collectorReachable(),
      },
      this.ctx.clock.now(),
    );
    this.operatorConfirmed = false;
    this.ctx.bus.on('result', this.name, ({ result: r }) => this.watch?.result(r.finishedAt - r.capturedAt, this.ctx.clock.now()));
    this.ctx.bus.on('frame.failed', this.name, () => this.watch?.failure());
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), TICK_MS);
    this.timer.unref();
  }

  private check(): void {
    const p = this.state.data.pending;
    if (!this.watch || p?.step !== 'confirming') return;
    const verdict = this.watch.verdict(this.ctx.clock.now(), this.operatorConfirmed);
    if (verdict === null) return;
    this.endWatch();
    if (verdict === 'confirmed') {
      this.ctx.log.info({ id: p.id }, 'deployment confirmed');
      return this.finish({ id: p.id, outcome: 'confirmed' });
    }
    this.rollback(p.id, verdict.reason, verdict.detail).catch(logRejection(this.ctx.log, `rolling back ${p.id}`));
  }

  private endWatch(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watch = null;
    this.ctx.bus.off(this.name);
  }

  private async rollback(id: string, reason: RollbackReason, detail: string): Promise<void> {
    this.ctx.log.warn({ id, reason, detail }, 'rolling back the deployment: restoring the last good config');
    this.state.step('rolling-back', { reason });
    await this.hold('rolling-back');
    restoreGoodConfig(this.configFile(), this.state.goodConfig);
    this.finish({ id, outcome: 'rolled-back', reason, detail }, true);
  }

  private operatorConfirm(id: string): void {
    const p = this.state.data.pending;
    if (p?.id !== id || p.step !== 'confirming') return this.refuse('unknown-deployment', `${id} is not waiting for confirmation here`);
    this.operatorConfirmed = true;
    this.check();
  }

  /** `deploy rollback ID`: the one in its confirm window, or the current one when its predecessor's config is still kept. */
  private operatorRollback(id: string): void {
    const { pending, current, previous } = this.state.data;
    if (pending?.id === id && pending.step === 'confirming') {
      this.endWatch();
      this.rollback(id, 'operator', 'asked by the operator').catch(logRejection(this.ctx.log, `rolling back ${id}`));
      return;
    }
    if (pending || current?.id !== id) return this.refuse('unknown-deployment', `${id} is not the current deployment here, or another is under way`);
    this.ctx.log.warn({ id }, 'rolling back the current deployment on request: restoring the config before it');
    restoreGoodConfig(this.configFile(), this.state.goodConfig);
    this.state.save({ ...this.state.data, current: previous, previous: null });
    this.finish({ id, outcome: 'rolled-back', reason: 'operator', detail: 'asked by the operator after it was confirmed' }, true);
  }

  private fail(id: string, reason: string, detail: string, problems?: string[], shadow?: ShadowFigures[]): void {
    this.ctx.log.warn({ id, reason, detail, problems }, 'deployment failed; nothing was applied');
    rmSync(candidatePath(this.configFile()), { force: true });
    // a model already swapped live (a failure while putting the config in place) goes back with a restart
    this.finish({ id, outcome: 'failed', reason, detail, problems, shadow }, (this.state.data.pending?.swapped ?? []).length > 0);
  }

  /** Ends the pending deployment; `thenApply`: counted once the reload or restart that follows is done. */
  private finish(f: Omit<Finished, 'at'>, thenApply = false): void {
    const swappedLive = (this.state.data.pending?.swapped ?? []).length > 0;
    this.state.finish({ ...f, uncounted: true }, this.ctx.clock.now());
    this.report();
    if (!thenApply) return this.countFinished();
    this.reloadOrRestart([], swappedLive); // a model swapped live goes back only with a restart
  }

  private count(outcome: Outcome, reason?: string): void {
    this.metrics?.outcomes.inc({ outcome });
    if (outcome === 'rolled-back') this.metrics?.rollbacks.inc({ reason: reason ?? 'interrupted' });
  }

  /** The latest deployment's end, counted once (the start-up recovery and a restart leave it to the deployer that starts). */
  private countFinished(): void {
    const last = this.state.data.last;
    if (!last?.uncounted) return;
    this.ctx.log.info({ id: last.id, outcome: last.outcome, reason: last.reason, detail: last.detail }, 'deployment ended');
    this.count(last.outcome, last.reason);
    this.state.save({ ...this.state.data, last: { ...last, uncounted: false } });
  }

  /** The retained report of the latest deployment (queued while the broker is away), and an event. */
  private report(): void {
    const r = this.publishReport();
    if (r) this.link.publish(this.link.topic('events'), JSON.stringify({ type: 'deployment', ...r.body }));
  }

  private publishReport(): ReturnType<typeof signedReport> {
    const r = signedReport(this.state.data, this.link.deviceId, this.host.keys());
    if (r) this.link.publish(this.link.topic('deployment'), JSON.stringify(r.signed), { retain: true, qos: 1 });
    return r;
  }

  private configFile(): string {
    return String(this.host.status().config);
  }

  private resultsBefore(): boolean {
    const cams = (this.host.status().cameras ?? {}) as Record<string, { processed?: number }>;
    return Object.values(cams).some((c) => (c.processed ?? 0) > 0);
  }

  /** From the uploader's figures: null when nothing is uploaded, else whether the last tick delivered or did not fail. */
  private collectorReachable(): boolean | null {
    const up = this.host.status().upload as { failures?: number; delivered?: number; lastError?: string | null } | undefined;
    if (!up) return null;
    return !up.lastError;
  }
}

/** The deployment feature: a Deployer on the node's broker link, when it has one (deployments arrive there). */
export function deployComponents(ctx: ContextFor, deps: { link: MqttLink | null; host: DeployHost; pipelines: PipelineSet }): Component[] {
  return deps.link ? [new Deployer(ctx('deploy'), deps.link, deps.host, deps.pipelines)] : [];
}
