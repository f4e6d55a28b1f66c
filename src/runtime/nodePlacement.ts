import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { LocalSession, type SessionSpec } from './localSession.js';
import type { TensorMap } from './tensorData.js';

/** Where a session's nodes ran: an accelerator that takes 3 of 200 nodes is not a win. */
export interface NodePlacement {
  nodes: number;
  onProvider: number;
  /** Operators that fell back to the CPU, with how many nodes of each. */
  cpuOps: Record<string, number>;
  /** Whether ORT created the session with CPU fallback disabled (every node on the provider). */
  withoutCpuFallback: 'accepted' | 'refused';
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string; op_name?: string };
}

/**
 * Asks ORT where the nodes of `model` run on `spec.provider`: first a session with CPU fallback disabled (ORT
 * refuses it when any node needs the CPU), then one profiled run, whose trace names each node's provider.
 */
export async function nodePlacement(model: string | Uint8Array, spec: SessionSpec, feeds: TensorMap): Promise<NodePlacement> {
  const withoutCpuFallback = await LocalSession.create(model, { ...spec, noCpuFallback: true, cacheDir: null }).then(
    (s) => s.release().then(() => 'accepted' as const),
    () => 'refused' as const,
  );
  const dir = mkdtempSync(join(tmpdir(), 'outpost-placement-'));
  try {
    const session = await LocalSession.create(model, { ...spec, cacheDir: null, profilePrefix: join(dir, 'run') });
    await session.run(structuredClone(feeds));
    await session.release(); // writes the trace
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('ORT wrote no profile');
    return { ...countNodes(JSON.parse(readFileSync(join(dir, file), 'utf8')) as ProfileEvent[]), withoutCpuFallback };
  } catch (err) {
    throw new Error(`cannot tell where the nodes run on ${spec.provider}: ${errorMessage(err)}`, { cause: err });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function countNodes(events: ProfileEvent[]): Omit<NodePlacement, 'withoutCpuFallback'> {
  const byNode = new Map<string, { provider: string; op: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.provider || !e.name) continue;
    byNode.set(e.name.replace(/_(kernel_time|fence_before|fence_after)$/, ''), { provider: e.args.provider, op: e.args.op_name ?? '?' });
  }
  const cpuOps: Record<string, number> = {};
  let onProvider = 0;
  for (const { provider, op } of byNode.values()) {
    if (provider === 'CPUExecutionProvider') cpuOps[op] = (cpuOps[op] ?? 0) + 1;
    else onProvider++;
  }
  return { nodes: byNode.size, onProvider, cpuOps };
}
