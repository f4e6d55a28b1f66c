import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deployment } from './document.js';
import { writeDurable } from '../durableFile.js';
import type { ShadowFigures } from './shadowRun.js';

/** The steps a deployment goes through on a board, in order; each is written to the state folder before it acts. */
export const STEPS = ['received', 'fetched', 'validated', 'shadow', 'applying', 'confirming', 'rolling-back'] as const;
export type Step = (typeof STEPS)[number];
export const OUTCOMES = ['confirmed', 'rolled-back', 'failed', 'refused'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const ROLLBACK_REASONS = [
  'operator',
  'not-confirmed',
  'results-stopped',
  'error-rate',
  'latency',
  'broker-unreachable',
  'collector-unreachable',
  'interrupted',
  'crash-loop',
] as const;
export type RollbackReason = (typeof ROLLBACK_REASONS)[number];

/** The deployment under way: its document, its step, and what the confirm window compares against. */
export interface Pending {
  id: string;
  step: Step;
  doc: Deployment;
  /** the operator key's keyring name */
  operator: string;
  at: number;
  /** confirming: when the window ends */
  deadline?: number;
  /** what worked before it was applied: only what worked may be lost */
  before?: { broker: boolean; collector: boolean; results: boolean };
  /** process starts while confirming: a board that keeps dying on the new config rolls back */
  boots?: number;
  reason?: string;
  /** what the shadow run measured */
  shadow?: ShadowFigures[];
  /** models already swapped live (going back needs a restart) */
  swapped?: string[];
}

export interface Finished {
  id: string;
  outcome: Outcome;
  reason?: string;
  detail?: string;
  problems?: string[];
  shadow?: ShadowFigures[];
  at: number;
  /** set by the start-up rollback, for the deployer to count once it has its metrics */
  uncounted?: boolean;
}

export interface DeployStateData {
  v: 1;
  /** the deployment the board runs, confirmed */
  current: { id: string; at: number } | null;
  /** the one before it */
  previous: { id: string; at: number } | null;
  pending: Pending | null;
  /** how the latest deployment ended */
  last: Finished | null;
}

const EMPTY: DeployStateData = { v: 1, current: null, previous: null, pending: null, last: null };

/** `<stateDir>/deploy`: state.json (the steps), good.yaml (the last good config), files/<sha256> (fetched files). */
export class DeployState {
  readonly dir: string;
  data: DeployStateData = EMPTY;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'deploy');
  }

  get goodConfig(): string {
    return join(this.dir, 'good.yaml');
  }

  get filesDir(): string {
    return join(this.dir, 'files');
  }

  /** Reads state.json; a missing file is no deployment yet. An unreadable one throws (the caller says what to do). */
  load(): DeployStateData {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'state.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return (this.data = EMPTY);
      throw err;
    }
    const parsed = JSON.parse(text) as DeployStateData;
    if (parsed.v !== 1) throw new Error(`${join(this.dir, 'state.json')} is not a v1 deployment state`);
    return (this.data = parsed);
  }

  save(next: DeployStateData): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeDurable(join(this.dir, 'state.json'), JSON.stringify(next));
    this.data = next;
  }

  /** The pending deployment moved to `step` (written before the step acts). */
  step(step: Step, more: Partial<Pending> = {}): Pending {
    const pending = { ...this.data.pending!, at: Date.now(), ...more, step };
    this.save({ ...this.data, pending });
    return pending;
  }

  /** The pending deployment ended; a confirmed one becomes current. */
  finish(f: Omit<Finished, 'at'>, at: number): void {
    const d = this.data;
    const confirmed = f.outcome === 'confirmed';
    this.save({
      ...d,
      current: confirmed ? { id: f.id, at } : d.current,
      previous: confirmed ? d.current : d.previous,
      pending: d.pending?.id === f.id ? null : d.pending,
      last: { ...f, at },
    });
  }
}
