import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parse } from 'yaml';
import { readKeys, signMessage, type NodeKeys } from '../crypto/index.js';
import { CHUNK_BYTES, chunkTopic, deploymentSchema, parseSelector, targets, type Deployment } from '../deploy/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { writeError } from '../log.js';
import { openBroker, type MqttClient } from '../mqtt/index.js';
import { brokerTarget, describeBrokerEvent, reconnecting, type BrokerFlags, type BrokerTarget } from './brokerFlags.js';
import { keysFolder } from './common.js';
import { DeploymentReports, reportTable, type DeviceReport } from './deployReports.js';
import { readTrustFile } from './trustFile.js';

export interface DeployOptions extends BrokerFlags {
  broker?: string;
  key: string;
  trust: string;
  json?: boolean;
  /** seconds to wait past the confirm window for each stage */
  timeout: number;
}

export interface CreateOptions extends DeployOptions {
  to: string;
  canary?: number;
  confirm?: number;
  requireConfirm?: boolean;
}

/** `10m`, `90s`, `1h`, or plain seconds. */
export function duration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(value.trim());
  if (!m || Number(m[1]) <= 0) throw new InvalidArgumentError('a duration such as 90s, 10m or 1h');
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

/** `--canary 34%` (or 34): a share of the targets. */
export function percent(value: string): number {
  const n = Number(value.replace(/%$/, ''));
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('a share from 0% to 100%, such as 34%');
  return n;
}

/** A file the deployment carries on the broker: its bytes, published as retained chunks before the document. */
interface Upload {
  sha256: string;
  bytes: Buffer;
}

/** `files[].path`: the file read here, pinned by its sha256 and its chunks' (sent over the broker, no URL needed). */
function localFiles(raw: Record<string, unknown>, base: string): Upload[] {
  const uploads: Upload[] = [];
  if (!Array.isArray(raw.files)) return uploads;
  raw.files = raw.files.map((f: Record<string, unknown>) => {
    if (typeof f?.path !== 'string') return f;
    const { path, ...rest } = f;
    const bytes = readFileSync(resolve(base, path as string));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const chunks = Array.from({ length: Math.ceil(bytes.length / CHUNK_BYTES) }, (_, i) => sha(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)));
    uploads.push({ sha256: sha(bytes), bytes });
    return { name: basename(path as string), ...rest, sha256: sha(bytes), size: bytes.length, chunks };
  });
  return uploads;
}

/** Publishes each upload's chunks, retained (a board that comes later still finds them), each acknowledged. */
async function publishChunks(s: Session, uploads: Upload[]): Promise<void> {
  for (const u of uploads)
    for (let i = 0; i * CHUNK_BYTES < u.bytes.length; i++)
      await s.client.publishAsync(chunkTopic(s.target.base, u.sha256, i), u.bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES), { qos: 1, retain: true });
}

/** The operator's deployment file (YAML): `config.file` names a file to send whole, `files[].path` one to send over the broker. */
function readDeploymentFile(file: string, o: CreateOptions): { doc: Deployment; uploads: Upload[] } {
  let raw: Record<string, unknown>;
  try {
    raw = (parse(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new OutpostError('OUTPOST_E_CONFIG', `${file}: ${errorMessage(err).split('\n')[0]}`);
  }
  const uploads = localFiles(raw, dirname(file));
  const config = raw.config as { file?: unknown } | undefined;
  if (typeof config?.file === 'string') raw.config = { file: readFileSync(resolve(dirname(file), config.file), 'utf8') };
  const gates = {
    ...(raw.gates as object | undefined),
    ...(o.confirm ? { confirmSeconds: o.confirm } : {}),
    ...(o.requireConfirm ? { requireConfirm: true } : {}),
  };
  const doc = deploymentSchema.safeParse({ id: `d-${Date.now().toString(36)}`, ...raw, targets: parseSelector(o.to), gates });
  if (!doc.success) {
    const i = doc.error.issues[0];
    throw new OutpostError('OUTPOST_E_CONFIG', `${file}: ${i.path.join('.') || '(document)'}: ${i.message}`);
  }
  return { doc: doc.data, uploads };
}

interface Session {
  client: MqttClient;
  target: BrokerTarget;
  keys: NodeKeys;
  reports: DeploymentReports;
  trusted: string[];
}

async function session(id: string, o: DeployOptions, run: (s: Session) => Promise<void>): Promise<void> {
  const target = brokerTarget(o.broker, o);
  const keys = readKeys(keysFolder(o.key, '--key'));
  const trust = readTrustFile(o.trust);
  const client = await openBroker(target.url, {
    ...target.options,
    clientId: `outpost-deploy-${randomBytes(4).toString('hex')}`,
    reconnect: reconnecting((e) => writeError(`outpost: ${describeBrokerEvent(target.url, e)}`)),
  });
  const reports = new DeploymentReports(target.base, id, trust);
  try {
    await reports.follow(client);
    await run({ client, target, keys, reports, trusted: trust.filter((t) => t.sign).map((t) => t.name) });
  } finally {
    await client.endAsync();
  }
}

/** The devices a selector names: ids as given, labels matched against the labels each board publishes in its retained facts. */
async function resolveTargets(s: Session, doc: Deployment): Promise<string[]> {
  let devices = doc.targets.devices;
  if (!devices) {
    const labels = new Map<string, Record<string, string>>();
    const prefix = `${s.target.base}/`;
    s.client.on('message', (topic, payload) => {
      const [device, kind] = topic.slice(prefix.length).split('/');
      if (kind !== 'facts') return;
      try {
        labels.set(device, (JSON.parse(payload.toString('utf8')) as { labels?: Record<string, string> }).labels ?? {});
      } catch {
        /* not a device's facts */
      }
    });
    await s.client.subscribeAsync(`${s.target.base}/+/facts`, { qos: 1 });
    await new Promise((r) => setTimeout(r, 1500)); // retained facts arrive at once; a moment for a large fleet
    devices = [...labels].filter(([d, l]) => targets(doc, d, l)).map(([d]) => d);
  }
  const unknown = devices.filter((d) => !s.trusted.includes(d));
  if (unknown.length > 0)
    throw new OutpostError(
      'OUTPOST_E_CONFIG',
      `--trust has no sign key for ${unknown.join(', ')}: add them (outpost keys show on each); their reports could not be checked`,
    );
  if (devices.length === 0)
    throw new OutpostError('OUTPOST_E_USAGE', `no device matches the selector (boards publish their node.labels in <base>/<device>/facts)`);
  return devices.sort();
}

function send(s: Session, device: string, action: 'create' | 'confirm' | 'rollback', args: Record<string, unknown>): Promise<unknown> {
  const message = signMessage({ purpose: 'deployment', target: device, action, args }, s.keys.sign);
  return s.client.publishAsync(`${s.target.base}/${device}/deploy/${action}`, JSON.stringify(message), { qos: 1 });
}

function print(o: DeployOptions, rows: DeviceReport[], waiting: string[] = []): void {
  process.stdout.write(o.json ? JSON.stringify({ devices: rows, waiting }) + '\n' : reportTable(rows, waiting));
}

/**
 * `outpost deploy create FILE --to SELECTOR`: signs the document for each target and publishes it; the canary
 * share goes first, the rest only when every canary confirmed; the first failure stops the rollout (exit 1).
 */
export async function deployCreate(file: string, o: CreateOptions): Promise<void> {
  const { doc, uploads } = readDeploymentFile(file, o);
  await session(doc.id, o, async (s) => {
    const devices = await resolveTargets(s, doc);
    await publishChunks(s, uploads);
    const canaries = o.canary ? Math.max(1, Math.round((devices.length * o.canary) / 100)) : devices.length;
    const stages = [devices.slice(0, canaries), devices.slice(canaries)].filter((st) => st.length > 0);
    const limit = (doc.gates.confirmSeconds + o.timeout) * 1000;
    if (!o.json)
      process.stderr.write(
        `deployment ${doc.id}: ${stages.map((st, i) => `${i === 0 && stages.length > 1 ? 'canary' : 'stage'} ${st.join(', ')}`).join('; then ')}\n`,
      );
    if (!o.json) s.reports.onChange((r) => process.stderr.write(`${r.device}: ${r.step} ${r.result}${r.reason ? ` (${r.reason})` : ''}\n`));
    for (const stage of stages) {
      const rows = () => stage.map((d) => s.reports.rows.get(d)).filter((r): r is DeviceReport => r !== undefined);
      await Promise.all(stage.map((d) => send(s, d, 'create', doc as unknown as Record<string, unknown>)));
      const inTime = await s.reports.settled(stage, limit);
      const failed = rows().filter((r) => r.result === 'failed');
      const waiting = stage.filter((d) => !s.reports.rows.has(d) || s.reports.rows.get(d)!.result === 'running');
      if (failed.length > 0 || !inTime) {
        print(o, [...s.reports.rows.values()], waiting);
        const why =
          failed.length > 0
            ? failed.map((r) => `${r.device}: ${r.step} (${r.reason ?? ''}${r.problems ? `: ${r.problems.join('; ')}` : ''})`).join('; ')
            : `no end from ${waiting.join(', ')} in time`;
        throw new OutpostError('OUTPOST_E_REFUSED', `deployment ${doc.id} stopped: ${why}; later stages were not sent`);
      }
    }
    print(o, [...s.reports.rows.values()]);
  });
}

/** `outpost deploy status ID`: every device's signed report of ID; `--watch` prints the table again on every change. */
export async function deployStatus(id: string, o: DeployOptions & { watch?: boolean }): Promise<void> {
  await session(id, o, async (s) => {
    await new Promise((r) => setTimeout(r, 1000)); // the retained reports
    print(o, [...s.reports.rows.values()]);
    if (!o.watch) return;
    s.reports.onChange(() => print(o, [...s.reports.rows.values()]));
    await new Promise((r) => setTimeout(r, o.timeout * 1000));
  });
}

/** `outpost deploy confirm|rollback ID`: to the devices that report ID (or --to), then waits for their reports to say so. */
export async function deployDecide(action: 'confirm' | 'rollback', id: string, o: DeployOptions & { to?: string }): Promise<void> {
  await session(id, o, async (s) => {
    await new Promise((r) => setTimeout(r, 1000));
    const devices = o.to ? (parseSelector(o.to).devices ?? []) : [...s.reports.rows.keys()];
    if (devices.length === 0) throw new OutpostError('OUTPOST_E_USAGE', `no device reports deployment ${id}; name them with --to`);
    const want = action === 'confirm' ? 'confirmed' : 'rolled-back';
    const before = new Map(devices.map((d) => [d, s.reports.rows.get(d)?.at]));
    await Promise.all(devices.map((d) => send(s, d, action, { id })));
    const moved = (r: DeviceReport) => r.step === want || (r.at !== before.get(r.device) && r.result !== 'running');
    const inTime = await s.reports.settled(devices, o.timeout * 1000, moved);
    print(
      o,
      devices.flatMap((d) => s.reports.rows.get(d) ?? []),
    );
    const notDone = devices.filter((d) => s.reports.rows.get(d)?.step !== want);
    if (!inTime || notDone.length > 0) throw new OutpostError('OUTPOST_E_REFUSED', `${notDone.join(', ')} did not report ${want} for ${id}`);
  });
}
