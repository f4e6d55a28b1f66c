import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../src/core/index.js';
import { LatestFrameSlot } from '../src/pipeline/index.js';
import { LatencyWindow } from '../src/telemetry/index.js';
import type { Frame } from '../src/types.js';

const frame = (seq: number): Frame => ({ id: `c-${seq}`, camera: 'c', seq, capturedAt: seq, data: Buffer.alloc(0), encoding: 'jpeg', width: 1, height: 1 });

describe('latest-frame-wins slot', () => {
  it('holds one frame and hands back the one a newer frame replaced', () => {
    const slot = new LatestFrameSlot(undefined);
    expect(slot.put(frame(1), 0)).toBeNull();
    expect(slot.put(frame(2), 1)).toEqual({ dropped: frame(1), reason: 'superseded' });
    expect(slot.take()?.seq).toBe(2);
    expect(slot.take()).toBeUndefined();
  });

  it('refuses frames over the fps cap, and the cap can change live', () => {
    const slot = new LatestFrameSlot(2); // one frame per 500 ms
    expect(slot.put(frame(1), 0)).toBeNull();
    expect(slot.put(frame(2), 200)).toEqual({ dropped: frame(2), reason: 'fps-cap' });
    expect(slot.put(frame(3), 600)).toEqual({ dropped: frame(1), reason: 'superseded' });
    slot.setMaxFps(undefined);
    expect(slot.put(frame(4), 601)?.reason).toBe('superseded');
  });
});

describe('event bus', () => {
  it("isolates a failing subscriber and removes a component's subscriptions", () => {
    const errors: string[] = [];
    const log = pino({ level: 'error' }, { write: (s: string) => errors.push(JSON.parse(s).owner) });
    const bus = new EventBus(log);
    const seen: string[] = [];
    bus.on('frame.dropped', 'broken', () => {
      throw new Error('boom');
    });
    bus.on('frame.dropped', 'counter', (d) => seen.push(d.camera));
    bus.emit('frame.dropped', { camera: 'a', reason: 'superseded' });
    bus.off('counter');
    bus.emit('frame.dropped', { camera: 'b', reason: 'superseded' });
    expect(seen).toEqual(['a']);
    expect(errors).toEqual(['broken', 'broken']);
  });
});

describe('latency window', () => {
  it('keeps the last N samples and reports nearest-rank percentiles', () => {
    const w = new LatencyWindow(4);
    expect(w.percentile(50)).toBeNull();
    for (const v of [100, 1, 2, 3, 4]) w.add(v); // 100 falls out of the window
    expect(w.size).toBe(4);
    expect(w.percentile(50)).toBe(2);
    expect(w.percentile(95)).toBe(4);
  });
});
