import type { EventBus } from '../core/index.js';
import { summariseOutput } from '../resultSummary.js';
import type { Result } from '../types.js';
import { STAGES, type StageName } from '../vocabulary.js';
import { LatencyWindow } from './latencyWindow.js';

const FPS_WINDOW_MS = 10_000;

interface CameraStats {
  received: number;
  processed: number;
  dropped: number;
  skipped: number;
  failed: number;
  recent: number[]; // finish times inside the fps window
  lastResultAt: number | null;
  last: string[];
}

export interface CameraSnapshot {
  fps: number;
  received: number;
  processed: number;
  dropped: number;
  skipped: number;
  failed: number;
  lastResultAt: string | null;
  /** What the camera's newest result said (text lines, labels): Home Assistant shows it. */
  last: string[];
}

export interface StatsSnapshot {
  cameras: Record<string, CameraSnapshot>;
  latencyMs: Record<StageName | 'total' | 'captureToResult', { p50: number | null; p95: number | null }>;
  lastResult: Result | null;
  lastResultAt: number | null;
}

/** What /status reports: per-camera counters and fps, per-stage latency percentiles. Fed by the event bus. */
export class RunningStats {
  private readonly cameras = new Map<string, CameraStats>();
  private readonly latency = new Map<string, LatencyWindow>();
  private lastResult: Result | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  subscribe(bus: EventBus): void {
    bus.on('frame.received', 'stats', (f) => this.camera(f.camera).received++);
    bus.on('frame.dropped', 'stats', (d) => this.camera(d.camera).dropped++);
    bus.on('frame.failed', 'stats', (f) => this.camera(f.camera).failed++);
    bus.on('frame.skipped', 'stats', (f) => this.camera(f.camera).skipped++);
    bus.on('result', 'stats', ({ result }) => this.record(result));
  }

  private camera(name: string): CameraStats {
    let s = this.cameras.get(name);
    if (!s) this.cameras.set(name, (s = { received: 0, processed: 0, dropped: 0, skipped: 0, failed: 0, recent: [], lastResultAt: null, last: [] }));
    return s;
  }

  private window(name: string): LatencyWindow {
    let w = this.latency.get(name);
    if (!w) this.latency.set(name, (w = new LatencyWindow()));
    return w;
  }

  record(r: Result): void {
    const s = this.camera(r.camera);
    const now = this.now();
    s.processed++;
    s.lastResultAt = now;
    s.last = summariseOutput(r.output);
    s.recent.push(now);
    while (s.recent.length > 0 && s.recent[0] < now - FPS_WINDOW_MS) s.recent.shift();
    for (const stage of STAGES) this.window(stage).add(r.timings[`${stage}Ms`]);
    this.window('total').add(r.timings.totalMs);
    this.window('captureToResult').add(r.finishedAt - r.capturedAt);
    this.lastResult = r;
  }

  /** Time of the newest result from any camera (for /healthz). */
  get lastResultAt(): number | null {
    return this.lastResult ? this.lastResult.finishedAt : null;
  }

  snapshot(): StatsSnapshot {
    const now = this.now();
    const cameras: Record<string, CameraSnapshot> = {};
    for (const [name, s] of this.cameras) {
      const recent = s.recent.filter((t) => t >= now - FPS_WINDOW_MS);
      const span = recent.length > 1 ? (recent[recent.length - 1] - recent[0]) / 1000 : 0;
      cameras[name] = {
        fps: span > 0 ? round((recent.length - 1) / span) : 0,
        received: s.received,
        processed: s.processed,
        dropped: s.dropped,
        skipped: s.skipped,
        failed: s.failed,
        lastResultAt: s.lastResultAt ? new Date(s.lastResultAt).toISOString() : null,
        last: s.last,
      };
    }
    const latencyMs = Object.fromEntries(
      [...STAGES, 'total', 'captureToResult'].map((k) => {
        const w = this.latency.get(k);
        return [k, { p50: roundOrNull(w?.percentile(50)), p95: roundOrNull(w?.percentile(95)) }];
      }),
    ) as StatsSnapshot['latencyMs'];
    return { cameras, latencyMs, lastResult: this.lastResult, lastResultAt: this.lastResultAt };
  }
}

const round = (v: number) => Math.round(v * 100) / 100;
const roundOrNull = (v: number | null | undefined) => (v === null || v === undefined ? null : round(v));
