import type { PowerConfig } from '../config/index.js';
import { GOVERNOR_LEVELS, type GovernorLevel } from '../vocabulary.js';
import type { PowerState } from '../vocabulary.js';
import type { BoardFamily, SensorSnapshot } from './boardSensors.js';
import type { TripPoint } from './thermal.js';

export interface Thresholds {
  warm: number;
  hot: number;
  critical: number;
}

export interface Transition {
  from: GovernorLevel;
  to: GovernorLevel;
  at: number;
  reason: string;
  temperatureC: number | null;
  trendCPerMin: number | null;
  powerState: PowerState;
}

export interface GovernorState {
  level: GovernorLevel;
  since: number;
  thresholds: Thresholds;
  temperatureC: number | null;
  trendCPerMin: number | null;
  powerState: PowerState;
  transitions: number;
}

/** Where each family's firmware starts to throttle, less a margin: Pi at 80-85 °C, Jetson around 95 °C. */
const FAMILY_THRESHOLDS: Record<BoardFamily, Thresholds> = {
  'raspberry-pi': { warm: 65, hot: 72, critical: 78 },
  jetson: { warm: 70, hot: 80, critical: 88 },
  generic: { warm: 75, hot: 85, critical: 92 },
};

const TREND_WINDOW_MS = 60_000;

const rank = (l: GovernorLevel) => GOVERNOR_LEVELS.indexOf(l);
const maxLevel = (a: GovernorLevel, b: GovernorLevel) => (rank(a) >= rank(b) ? a : b);

/**
 * Thresholds from config, else from the zone's passive/hot/critical trip points, else per board family.
 * A Pi's firmware throttles at 80-85 °C, far below its kernel's 110 °C trip: the family numbers win there.
 */
export function chooseThresholds(configured: Thresholds | undefined, trips: TripPoint[], family: BoardFamily): Thresholds {
  if (configured) return configured;
  if (family === 'raspberry-pi') return FAMILY_THRESHOLDS[family];
  const trip = (type: string) =>
    trips
      .filter((t) => t.type === type)
      .map((t) => t.celsius)
      .sort((a, b) => a - b)[0];
  const critical = trip('critical');
  const hot = trip('hot') ?? trip('passive');
  if (critical !== undefined && critical > 40) {
    const c = critical - 5;
    const h = hot !== undefined && hot < c ? hot - 3 : c - 8;
    return { warm: h - 8, hot: h, critical: c };
  }
  return FAMILY_THRESHOLDS[family];
}

/**
 * Turns sensor readings into a level. Hysteresis (a level is left only below its threshold minus the
 * hysteresis) and dwell times (a new level must hold before it is taken) keep a noisy sensor from flapping;
 * a rising trend steps up early; critical is taken at once; a power state can impose a least level.
 */
export class Governor {
  private level: GovernorLevel = 'nominal';
  private since: number;
  private pending: { level: GovernorLevel; since: number } | null = null;
  private history: { at: number; c: number }[] = [];
  private last: GovernorState;
  private transitions = 0;

  constructor(
    private cfg: PowerConfig,
    now: number,
  ) {
    this.since = now;
    this.last = {
      level: 'nominal',
      since: now,
      thresholds: FAMILY_THRESHOLDS.generic,
      temperatureC: null,
      trendCPerMin: null,
      powerState: 'mains',
      transitions: 0,
    };
  }

  configure(cfg: PowerConfig): void {
    this.cfg = cfg;
  }

  get state(): GovernorState {
    return this.last;
  }

  /** Feeds one snapshot; returns the transition it caused, if any. */
  update(s: SensorSnapshot): Transition | null {
    const now = s.at;
    const t = s.temperature?.celsius ?? null;
    const thresholds = chooseThresholds(this.cfg.thresholds, s.temperature?.trips ?? [], s.board.family);
    if (t !== null) this.history = [...this.history.filter((h) => h.at >= now - TREND_WINDOW_MS), { at: now, c: t }];
    const trend = this.trend();
    // A reading that fails once is no reason to relax: hold the level; only a board without sensors sits at nominal.
    const seenBefore = this.history.length > 0;
    let candidate: GovernorLevel = t !== null ? this.temperatureLevel(t, thresholds) : seenBefore ? this.level : 'nominal';
    let reason = t !== null ? `${t.toFixed(1)} °C` : seenBefore ? 'temperature unreadable; holding the level' : 'no temperature sensor';
    if (t !== null && trend !== null && this.cfg.trend.enabled && trend >= this.cfg.trend.minRisePerMinute && candidate !== 'critical') {
      const next = GOVERNOR_LEVELS[rank(candidate) + 1];
      const projected = t + (trend * this.cfg.trend.lookaheadSeconds) / 60;
      if (projected >= thresholds[next as keyof Thresholds]) [candidate, reason] = [next, `${t.toFixed(1)} °C rising ${trend.toFixed(1)} °C/min`];
    }
    const floor = s.powerState === 'mains' ? 'nominal' : this.cfg.powerStates[s.powerState];
    if (rank(floor) > rank(candidate)) [candidate, reason] = [floor, `power ${s.powerState}`];
    const transition = this.settle(candidate, now, reason, { t, trend, power: s.powerState });
    this.last = {
      level: this.level,
      since: this.since,
      thresholds,
      temperatureC: t,
      trendCPerMin: trend,
      powerState: s.powerState,
      transitions: this.transitions,
    };
    return transition;
  }

  private temperatureLevel(t: number, th: Thresholds): GovernorLevel {
    let up: GovernorLevel = 'nominal';
    for (const l of ['warm', 'hot', 'critical'] as const) if (t >= th[l]) up = l;
    if (rank(up) > rank(this.level)) return up;
    let l = this.level;
    while (l !== 'nominal' && t < th[l as keyof Thresholds] - this.cfg.hysteresis) l = GOVERNOR_LEVELS[rank(l) - 1];
    return maxLevel(l, up);
  }

  private settle(candidate: GovernorLevel, now: number, reason: string, r: { t: number | null; trend: number | null; power: PowerState }): Transition | null {
    if (candidate === this.level) {
      this.pending = null;
      return null;
    }
    if (!this.pending || this.pending.level !== candidate) this.pending = { level: candidate, since: now };
    const dwell = (rank(candidate) > rank(this.level) ? this.cfg.dwellSeconds.up : this.cfg.dwellSeconds.down) * 1000;
    if (candidate !== 'critical' && now - this.pending.since < dwell) return null;
    const from = this.level;
    this.level = candidate;
    this.since = now;
    this.pending = null;
    this.transitions++;
    return { from, to: candidate, at: now, reason, temperatureC: r.t, trendCPerMin: r.trend, powerState: r.power };
  }

  /**
   * Least-squares slope of the last minute, °C per minute (needs 30 s of readings). A reading below the
   * window's mean means it is not rising now (it peaked and fell): no trend then.
   */
  private trend(): number | null {
    const h = this.history;
    if (h.length < 3 || h[h.length - 1].at - h[0].at < 30_000) return null;
    if (h[h.length - 1].c < h.reduce((a, p) => a + p.c, 0) / h.length) return null;
    const mx = h.reduce((a, p) => a + p.at, 0) / h.length;
    const my = h.reduce((a, p) => a + p.c, 0) / h.length;
    let num = 0;
    let den = 0;
    for (const p of h) {
      num += (p.at - mx) * (p.c - my);
      den += (p.at - mx) ** 2;
    }
    return den === 0 ? null : (num / den) * 60_000;
  }
}
