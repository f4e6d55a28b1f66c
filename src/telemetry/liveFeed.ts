import type { ServerResponse } from 'node:http';
import { Counter } from 'prom-client';
import type { Component, ComponentContext } from '../core/index.js';
import { errorMessage } from '../errors.js';
import { guarded } from '../guarded.js';
import { summariseOutput } from '../resultSummary.js';
import type { Frame, Result } from '../types.js';
import { drawBoxes, type DrawnBox } from '../vision/index.js';
import { renderSections, type PageLive, type PageStatus } from './statusPage.js';

const HISTORY_MS = 10 * 60_000;
const SAMPLE_MS = 5_000;
const PUSH_MS = 1_000;
const EVENTS_KEPT = 20;
const MAX_CLIENTS = 32;
/** a page that has not read this much of what was sent to it (beyond the kernel's buffer) is cut */
const MAX_UNREAD_BYTES = 64 << 10;

interface LiveEvent {
  at: number;
  kind: 'result' | 'governor';
  camera?: string;
  text: string;
}

/** What one push to a page carries: its sections as HTML, and per camera the frame its image shows. */
export interface LiveUpdate {
  at: number;
  sections: Record<string, string>;
  frames: Record<string, string>;
}

/** The boxes and text of a result, where the page draws them over its frame. */
function overlay(r: Result): DrawnBox[] {
  const o = r.output;
  if (o.lines) return o.lines.map((l) => ({ box: l.box, label: l.text }));
  return (o.detections ?? []).map((d) => ({ box: d.box, label: `${d.text ?? d.classes?.[0]?.label ?? d.label} ${d.score.toFixed(2)}` }));
}

/**
 * The live status page's data: pushed to every open page once a second over server-sent events (GET /events),
 * with the temperature and level of the last ten minutes, the last 20 events, and per camera its newest frame
 * with the boxes and text of its result drawn (GET /cameras/NAME/latest.jpg). Everything is bounded: samples,
 * events, one frame per camera (the newest result's, which came with it), and open pages (refused past 32, counted).
 */
export class LiveFeed implements Component {
  readonly name = 'live';
  /** each open page and the bytes sent on its stream */
  private readonly clients = new Map<ServerResponse, number>();
  private cut: Counter<'reason'> | null = null;
  private readonly history: PageLive['history'] = [];
  private readonly events: LiveEvent[] = [];
  private readonly shown = new Map<string, { frame: Frame; result: Result; jpeg?: Promise<Buffer> }>();
  private timers: NodeJS.Timeout[] = [];
  refused = 0;

  constructor(
    private readonly ctx: ComponentContext,
    private readonly pageStatus: () => PageStatus,
  ) {}

  async start(): Promise<void> {
    const bus = this.ctx.bus;
    bus.on('result', this.name, ({ result: r, frame }) => {
      this.shown.set(r.camera, { frame, result: r });
      this.event({ at: r.finishedAt, kind: 'result', camera: r.camera, text: summariseOutput(r.output).join(' | ') || '(nothing found)' });
    });
    bus.on('governor.transition', this.name, (t) => this.event({ at: this.ctx.clock.now(), kind: 'governor', text: `${t.from} → ${t.to}: ${t.reason}` }));
    this.cut = new Counter({
      name: 'outpost_status_live_cut_total',
      help: "Live pages cut: 'slow' (not reading), 'stream-budget' (status.liveStreamBytes sent; a reading page reconnects)",
      labelNames: ['reason'],
      registers: [this.ctx.registry],
    });
    this.sample();
    const onError = (err: unknown) => this.ctx.log.warn({ err: errorMessage(err) }, 'live page update failed; trying again on the next tick');
    this.timers = [
      setInterval(
        guarded(() => this.sample(), onError),
        SAMPLE_MS,
      ),
      setInterval(
        guarded(() => this.push(), onError),
        PUSH_MS,
      ),
    ];
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const res of this.clients.keys()) res.end();
    this.clients.clear();
  }

  /** An SSE stream for one page: the whole state at once, then an update every second. */
  attach(res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      this.refused++;
      res.writeHead(503, { 'retry-after': '10' }).end('too many open pages\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    this.clients.set(res, 0);
    res.on('close', () => this.clients.delete(res));
    this.send(res, this.update());
  }

  /** The camera's newest frame that has a result, with that result drawn on it (JPEG); null before the first. */
  latestJpeg(camera: string): Promise<Buffer> | null {
    const s = this.shown.get(camera);
    if (!s) return null;
    s.jpeg ??= drawBoxes(s.frame.data, overlay(s.result));
    return s.jpeg;
  }

  /** The history, events and frames shown, for a page's first render. */
  live(): PageLive {
    return { history: this.history, events: this.events, frames: Object.fromEntries([...this.shown].map(([c, s]) => [c, s.frame.id])) };
  }

  update(): LiveUpdate {
    const live = this.live();
    return { at: this.ctx.clock.now(), sections: renderSections(this.pageStatus(), live), frames: live.frames };
  }

  private event(e: LiveEvent): void {
    this.events.unshift(e);
    this.events.length = Math.min(this.events.length, EVENTS_KEPT);
  }

  private sample(): void {
    const power = this.pageStatus().power;
    const now = this.ctx.clock.now();
    this.history.push({ at: now, temperatureC: power?.governor?.temperatureC ?? null, level: power?.governor?.level ?? 'nominal' });
    while (this.history.length > 0 && this.history[0].at < now - HISTORY_MS) this.history.shift();
  }

  private push(): void {
    if (this.clients.size === 0) return;
    const u = this.update();
    for (const res of [...this.clients.keys()]) this.send(res, u);
  }

  /**
   * Writes an update. What a page that does not read can hold is bounded twice: past MAX_UNREAD_BYTES queued
   * here it is cut, and each stream ends (reset) after `status.liveStreamBytes`, so the kernel's send buffer
   * (megabytes) never fills either. A reading page loses at most its last update: EventSource reconnects and
   * the first message carries the whole page.
   */
  private send(res: ServerResponse, u: LiveUpdate): void {
    if (res.writableLength > MAX_UNREAD_BYTES) return this.drop(res, 'slow');
    const sent = (this.clients.get(res) ?? 0) + Buffer.byteLength(this.write(res, u));
    if (sent >= this.ctx.config.status.liveStreamBytes) return this.drop(res, 'stream-budget');
    this.clients.set(res, sent);
  }

  private write(res: ServerResponse, u: LiveUpdate): string {
    const data = `retry: 2000\ndata: ${JSON.stringify(u)}\n\n`;
    res.write(data);
    return data;
  }

  /** A reset, not a close: a closed socket would keep what the page never read queued in the kernel. */
  private drop(res: ServerResponse, reason: 'slow' | 'stream-budget'): void {
    this.cut?.inc({ reason });
    this.clients.delete(res);
    const socket = res.socket;
    if (socket && !socket.destroyed) socket.resetAndDestroy();
    else res.destroy();
  }
}
