import type { StagedPipeline } from '../../pipeline/index.js';
import type { TensorMap, TensorValues } from '../../runtime/index.js';
import type { Frame } from '../../types.js';

/** One frame's session runs: the stage's key and the feeds its session got. */
export type RecordedRuns = [string, TensorMap][];

/**
 * The feeds every stage's session gets, copied as the pipeline hands them over (its `tap`): what the raw
 * session.run timing and the memory probes replay.
 */
export class FeedRecorder {
  private current: RecordedRuns = [];

  readonly tap = (key: string, feeds: TensorMap): void => {
    this.current.push([key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { ...t, data: t.data.slice() }]))]);
  };

  /** Each frame through the pipeline (which also warms its sessions): the runs of each frame. */
  async record(pipeline: StagedPipeline, frames: readonly Frame[]): Promise<RecordedRuns[]> {
    const out: RecordedRuns[] = [];
    for (const f of frames) {
      this.current = [];
      await pipeline.process(f);
      out.push(this.current);
    }
    this.current = [];
    return out;
  }
}

type StoredTensor = { type: string; dims: number[]; data: string };

/** The recorded runs, with tensor bytes as base64 (a few MB for one frame of the demo pipeline). */
export function encodeFeeds(runs: RecordedRuns): string {
  const tensor = (t: TensorMap[string]): StoredTensor => ({
    type: t.type,
    dims: t.dims,
    data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64'),
  });
  return JSON.stringify(runs.map(([key, feeds]) => [key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tensor(t)]))]));
}

export function decodeFeeds(text: string): RecordedRuns {
  const runs = JSON.parse(text) as [string, Record<string, StoredTensor>][];
  const tensor = (t: StoredTensor) => {
    if (t.type !== 'float32') throw new Error(`the memory probe replays float32 feeds only, not ${t.type}`);
    const bytes = Buffer.from(t.data, 'base64');
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) as TensorValues;
    return { type: t.type as TensorMap[string]['type'], dims: t.dims, data };
  };
  return runs.map(([key, feeds]) => [key, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, tensor(t)]))]);
}
