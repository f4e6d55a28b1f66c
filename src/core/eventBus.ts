import type { Logger } from '../log.js';
import type { LevelPolicy } from '../config/index.js';
import type { Frame, Result } from '../types.js';
import type { GovernorLevel } from '../vocabulary.js';

/** Event name → payload. */
export interface OutpostEvents {
  /**
   * A result and the frame it was computed on: nobody looks a frame up again by id. The frame beside the result
   * (not in it) so that whoever keeps or serialises a result does not keep its frame: hold `frame` only as long as
   * you need it.
   */
  result: { result: Result; frame: Frame };
  'frame.dropped': { camera: string; reason: 'superseded' | 'fps-cap' | 'error' };
  'frame.failed': { camera: string; frameId: string; error: string };
  'frame.skipped': { camera: string; reason: 'no-motion' };
  'governor.transition': { from: string; to: string; reason: string; temperatureC: number | null; powerState: string };
  /** Every frame a camera delivers, before the motion gate (calibration recorders take theirs from here). */
  'frame.received': Frame;
  /** The governor's level and its policy: at start, on every transition, and when a reload changes the policy. */
  'governor.policy': { level: GovernorLevel; policy: LevelPolicy };
}

type Handler<K extends keyof OutpostEvents> = (payload: OutpostEvents[K]) => void;

/**
 * Typed publish/subscribe. A subscriber's exception is logged with its owner and never reaches the
 * publisher; `off(owner)` removes everything one component subscribed.
 */
export class EventBus {
  private readonly handlers = new Map<keyof OutpostEvents, { owner: string; fn: Handler<never> }[]>();

  constructor(private readonly log: Logger) {}

  on<K extends keyof OutpostEvents>(event: K, owner: string, fn: Handler<K>): void {
    const list = this.handlers.get(event) ?? [];
    list.push({ owner, fn: fn as Handler<never> });
    this.handlers.set(event, list);
  }

  off(owner: string): void {
    for (const [event, list] of this.handlers)
      this.handlers.set(
        event,
        list.filter((h) => h.owner !== owner),
      );
  }

  emit<K extends keyof OutpostEvents>(event: K, payload: OutpostEvents[K]): void {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        (h.fn as Handler<K>)(payload);
      } catch (err) {
        this.log.error({ err, event, owner: h.owner }, 'event subscriber failed');
      }
    }
  }
}
