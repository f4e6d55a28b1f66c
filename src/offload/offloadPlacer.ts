import { readFile } from 'node:fs/promises';
import { movingAverage } from '../movingAverage.js';
import { Counter, Gauge } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import type { OffloadConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { logRejection } from '../lastResort.js';
import { PeerRefused, type OffloadClient } from './client.js';
import type { Peer, PeerTable } from './peerTable.js';
import type { StageSpec } from './protocol.js';
import { summariseOutput } from '../resultSummary.js';
import type { Frame, PipelineOutput } from '../types.js';
import type { FramePlacer, PipelineSet, RemoteRange } from '../pipeline/index.js';
import { sameAnswer } from '../vision/index.js';
import { sha256File, stageSpec } from './remotePipelines.js';
import { guarded } from '../guarded.js';

const PROBE_TICK_MS = 2000;

/** Stages [from, to) of a pipeline, as a peer gets them. */
interface OffloadRange {
  from: number;
  to: number;
  specs: StageSpec[];
}

/**
 * Per frame, here or on a peer: a pipeline's offloadable stages (`offload.stages`: the detector on the frame, the
 * recogniser on the crops found here, or all of them) go to the healthy peer expected to answer first, when it beats running here by `marginMs`, or whenever the governor's
 * `offloadBias` for the level says so. Each peer is checked with a known-answer probe (a recent frame whose
 * answer this node computed itself) before it gets frames, and again every `probeSeconds`; a wrong or empty
 * answer rests it. A failed or late frame runs here: every frame is answered once.
 */
export class OffloadPlacer implements FramePlacer, Component {
  readonly name = 'offload';
  private readonly cfg: OffloadConfig;
  private bias = 0;
  private readonly localMs = new Map<string, number>();
  private readonly probeFrame = new Map<string, Frame>();
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  /** what each pipeline sends, worked out once (files hashed) per config */
  private readonly ranges = new Map<string, OffloadRange | null>();
  /** sha256 → our file, for a peer that lacks one and takes it */
  private readonly filesBySha = new Map<string, string>();
  private metrics: { sent: Counter<'peer' | 'outcome'> } | null = null;

  constructor(
    private readonly ctx: ComponentContext,
    cfg: Readonly<OffloadConfig>,
    private readonly set: PipelineSet,
    private readonly peers: PeerTable,
    private readonly client: OffloadClient,
    /** a model's sha256 (its source file's) and that file */
    private readonly source: (model: string) => { sha256: string; file: string },
    private readonly random: () => number = Math.random,
  ) {
    this.cfg = cfg;
  }

  async start(): Promise<void> {
    this.registerMetrics();
    this.bias = this.ctx.config.power.policy.nominal.offloadBias; // the governor's level says otherwise once it runs
    this.ctx.bus.on('governor.policy', this.name, ({ policy }) => (this.bias = policy.offloadBias));
    this.ctx.bus.on('result', this.name, ({ result: r, frame }) => {
      const pipeline = this.ctx.config.cameras.find((c) => c.name === r.camera)?.pipeline;
      if (!pipeline || r.placement !== 'local') return;
      const ms = r.timings.totalMs - r.timings.queueMs;
      this.localMs.set(pipeline, movingAverage(this.localMs.get(pipeline), ms));
      if (summariseOutput(r.output).length > 0) this.probeFrame.set(pipeline, frame); // a frame with something in it
    });
    if (Object.keys(this.cfg.stages).length === 0 && (this.cfg.peers.length > 0 || this.ctx.config.telemetry.mqtt))
      this.ctx.log.info('offload.stages is not set: every stage of every pipeline may run on a peer');
    this.timer = setInterval(
      guarded(() => this.probe(), logRejection(this.ctx.log, 'a known-answer probe')),
      PROBE_TICK_MS,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.client.close();
  }

  status(): Record<string, unknown> {
    return { offload: { peers: this.peers.status(this.ctx.clock.now()), bias: this.bias } };
  }

  capacity(): number {
    return this.peers.all().filter((p) => p.verified).length * this.cfg.placement.maxInflightPerPeer;
  }

  place(_camera: string, pipeline: string, _frame: Frame, localBusy = 0): RemoteRange | null {
    const range = this.range(pipeline);
    if (!range) return null;
    const models = range.specs.map((s) => s.model);
    const best = this.peers
      .candidates(models)
      .map((p) => ({ p, ms: this.peers.estimate(p, models[0]) }))
      .sort((a, b) => a.ms - b.ms)[0];
    if (!best) return null;
    const local = (this.localMs.get(pipeline) ?? 0) * (1 + localBusy);
    const send = this.random() < this.bias || best.ms + this.cfg.placement.marginMs < local;
    if (!send) return null;
    return { from: range.from, to: range.to, peer: best.p.name, run: (f, regions) => this.send(best.p, pipeline, range.specs, f, regions) };
  }

  /**
   * The stages of a pipeline a peer may run, as sent (files named by sha256), worked out once per config. With no
   * `offload.stages` at all, every stage of every pipeline may go: peers were given to be used.
   */
  private range(pipeline: string): OffloadRange | null {
    if (this.ranges.has(pipeline)) return this.ranges.get(pipeline)!;
    const all = this.ctx.config.pipelines[pipeline].stages;
    const names = Object.keys(this.cfg.stages).length === 0 ? all.map((s) => s.name) : this.cfg.stages[pipeline];
    const from = names ? all.findIndex((s) => s.name === names[0]) : -1;
    const stages = from >= 0 ? all.slice(from, from + names!.length) : null;
    const fileSha = (file: string) => {
      const sha = sha256File(file);
      this.filesBySha.set(sha, file);
      return sha;
    };
    const specs =
      stages?.map((s) => {
        const { sha256, file } = this.source(s.model);
        this.filesBySha.set(sha256, file);
        return stageSpec(s, sha256, fileSha);
      }) ?? null;
    const range = specs && { from, to: from + specs.length, specs };
    this.ranges.set(pipeline, range);
    return range;
  }

  private async send(
    peer: Peer,
    pipeline: string,
    stages: StageSpec[],
    frame: Frame,
    regions: PipelineOutput | null,
  ): Promise<{ output: PipelineOutput; inferMs: number }> {
    this.peers.begin(peer);
    try {
      const r = await this.client.run(peer, pipeline, stages, frame, regions);
      this.peers.succeeded(peer, r.totalMs, r.processMs, this.ctx.clock.now());
      this.metrics?.sent.inc({ peer: peer.name, outcome: 'ok' });
      return r;
    } catch (err) {
      this.peers.failed(peer, errorMessage(err), this.ctx.clock.now());
      this.metrics?.sent.inc({ peer: peer.name, outcome: 'failed' });
      throw err;
    }
  }

  /** Asks each peer due for it a frame whose answer this node computes itself; a wrong or empty answer rests it. */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      for (const peer of this.peers.dueForProbe(this.ctx.clock.now())) {
        for (const [pipeline, frame] of this.probeFrame) {
          const range = this.range(pipeline);
          if (!range || (peer.models && !peer.acceptsModels && !range.specs.every((s) => s.model in peer.models!))) continue;
          const known = await this.knownAnswer(pipeline, frame, range);
          if (!known) continue;
          const { regions, expected } = known;
          let verdict: string | null;
          try {
            const r = await this.runGivingFiles(peer, pipeline, range.specs, frame, regions);
            this.peers.measured(peer, r.totalMs, r.processMs);
            verdict = sameAnswer(expected, r.output)
              ? null
              : `answered ${JSON.stringify(summariseOutput(r.output))} for ${JSON.stringify(summariseOutput(expected))}`;
          } catch (err) {
            verdict = errorMessage(err);
          }
          this.peers.probed(peer, verdict === null, this.ctx.clock.now(), verdict);
          this.ctx.log[verdict ? 'warn' : 'info'](
            { peer: peer.name, pipeline, verdict: verdict ?? 'right' },
            verdict ? 'peer failed its known-answer probe; resting it' : 'peer passed its known-answer probe',
          );
          break;
        }
      }
    } finally {
      this.probing = false;
    }
  }

  /** What this node itself answers for a probe frame (null, logged, when it cannot: that is not the peer's fault). */
  private async knownAnswer(pipeline: string, frame: Frame, range: OffloadRange) {
    const here = this.set.get(pipeline);
    try {
      const regions = range.from > 0 ? await here.runPrefix(frame, range.from) : null;
      return { regions, expected: await here.runPrefix(frame, range.to) };
    } catch (err) {
      this.ctx.log.warn({ pipeline, err: errorMessage(err) }, 'cannot work out a known answer here; probing later');
      return null;
    }
  }

  /** A probe to a peer that lacks a file and takes it: the file is sent (checked there by sha256), then asked again. */
  private async runGivingFiles(peer: Peer, pipeline: string, stages: StageSpec[], frame: Frame, regions: PipelineOutput | null) {
    try {
      return await this.client.run(peer, pipeline, stages, frame, regions);
    } catch (err) {
      const missing = err instanceof PeerRefused && err.refusal.send ? (err.refusal.missing ?? []) : [];
      if (missing.length === 0 || !missing.every((sha) => this.filesBySha.has(sha))) throw err;
      for (const sha of missing) {
        const bytes = await readFile(this.filesBySha.get(sha)!);
        await this.client.sendFile(peer, sha, bytes);
        this.ctx.log.info({ peer: peer.name, sha256: sha, bytes: bytes.length }, 'gave a peer a file it lacked');
      }
      this.peers.gave(peer, missing);
      return await this.client.run(peer, pipeline, stages, frame, regions);
    }
  }

  private registerMetrics(): void {
    const registers = [this.ctx.registry];
    const peers = this.peers;
    this.metrics = {
      sent: new Counter({ name: 'outpost_offload_frames_total', help: 'Frames sent to peers, by outcome', labelNames: ['peer', 'outcome'], registers }),
    };
    new Gauge({
      name: 'outpost_offload_peer_rtt_seconds',
      help: 'Round trip to a peer, beyond its own inference',
      labelNames: ['peer'],
      registers,
      collect() {
        for (const p of peers.all()) if (p.rttMs !== null) this.set({ peer: p.name }, p.rttMs / 1000);
      },
    });
    new Gauge({
      name: 'outpost_offload_peer_available',
      help: '1 while a peer is verified and its breaker closed',
      labelNames: ['peer'],
      registers,
      collect() {
        for (const p of peers.all()) this.set({ peer: p.name }, p.verified && p.breaker === 'closed' && p.online ? 1 : 0);
      },
    });
  }
}
