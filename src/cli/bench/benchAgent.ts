import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { generateKeys, type PublicKeys } from '../../crypto/index.js';
import type { KeyRole } from '../../vocabulary.js';
import { freePort } from '../common.js';

/** An `outpost run` a multi-process bench starts on loopback: its folder, its keys and its ports. */
export interface BenchAgent {
  name: string;
  dir: string;
  keys: PublicKeys;
  statusPort: number;
  offloadPort: number;
}

/** A folder under `root` with a fresh key pair in its state folder, and two free ports. */
export async function makeAgent(root: string, name: string): Promise<BenchAgent> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return { name, dir, keys: generateKeys(join(dir, 'state', 'keys')), statusPort: await freePort(), offloadPort: await freePort() };
}

/** A keyring entry for these public keys. */
export const keyringEntry = (name: string, keys: PublicKeys, role: KeyRole) => ({ name, sign: keys.sign, box: keys.box, roles: [role] });

export interface AgentShape {
  keyring: ReturnType<typeof keyringEntry>[];
  /** the source of its one camera, `door`; none: it only serves */
  camera?: Record<string, unknown>;
  /** the detector's input side */
  maxSide: number;
  inflightFrames: number;
  serve: boolean;
  peers: BenchAgent[];
  /** offload.placement, as the run wants it */
  placement?: Record<string, unknown>;
  /** whole sections added as they are (telemetry, upload) */
  sections?: Record<string, unknown>;
}

/**
 * The daemon config of a bench agent: the built-in text detector on one CPU thread, its status page and
 * offload server on loopback, the detector offloadable to `peers`, JSON logs without results.
 */
export function agentConfig(a: BenchAgent, o: AgentShape): string {
  const url = (p: BenchAgent) => `http://127.0.0.1:${p.offloadPort}`;
  return stringify({
    node: { name: a.name, stateDir: join(a.dir, 'state') },
    keyring: o.keyring,
    ...(o.camera ? { cameras: [{ name: 'door', source: o.camera }] } : {}),
    models: { det: { file: 'builtin:ppocrv4-det' } },
    pipelines: { text: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db', maxSide: o.maxSide } }] } },
    runtime: { providers: ['cpu'], threads: 1, inflightFrames: o.inflightFrames },
    status: { port: a.statusPort },
    power: { enabled: false },
    offload: {
      serve: { enabled: o.serve, host: '127.0.0.1', port: a.offloadPort, advertise: url(a) },
      peers: o.peers.map((p) => ({ name: p.name, url: url(p) })),
      stages: { text: ['detect'] },
      ...(o.placement ? { placement: o.placement } : {}),
    },
    logging: { format: 'json', results: false },
    ...o.sections,
  });
}
