import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { OutpostConfig, ResolvedConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import { openBroker, redactUrl } from '../mqtt/index.js';
import type { Finding } from './doctorInstall.js';

const TIMEOUT_MS = 3000;

/** A TCP connection to host:port within the timeout: null when it opened, else why not. */
function tcpProbe(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: TIMEOUT_MS });
    const done = (why: string | null) => (socket.destroy(), resolve(why));
    socket.once('connect', () => done(null));
    socket.once('timeout', () => done(`no answer within ${TIMEOUT_MS / 1000} s`));
    socket.once('error', (err) => done(errorMessage(err)));
  });
}

/** The broker: a real MQTT CONNECT with the node's login (under a client id of its own, so a running daemon keeps its session). */
async function brokerFinding(mqtt: NonNullable<OutpostConfig['telemetry']['mqtt']>): Promise<Finding> {
  const url = redactUrl(mqtt.url);
  try {
    const client = await openBroker(mqtt.url, {
      clientId: `outpost-doctor-${randomBytes(4).toString('hex')}`,
      username: mqtt.username,
      password: mqtt.password,
      ca: mqtt.ca,
      cert: mqtt.cert,
      key: mqtt.key,
      timeoutMs: TIMEOUT_MS,
    });
    await client.endAsync();
    return { check: 'broker', ok: true, detail: `${url}: connected` };
  } catch (err) {
    return {
      check: 'broker',
      ok: false,
      detail: errorMessage(err),
      fix: `start the broker or fix telemetry.mqtt (url, username, password, ca) so that ${url} answers`,
    };
  }
}

async function collectorFinding(url: string): Promise<Finding> {
  const u = new URL(url);
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const why = await tcpProbe(u.hostname.replace(/^\[|\]$/g, ''), port);
  return {
    check: 'collector',
    ok: why === null,
    detail: why === null ? `${u.origin}: reachable` : `${u.origin}: ${why}`,
    fix: why === null ? undefined : 'start outpost collect there, or fix upload.collector.url / urls (uploads wait in the outbox meanwhile)',
  };
}

/** What the node talks to: its broker and its HTTP collector, each tried once with a short timeout. */
export async function reachFindings(config: ResolvedConfig | null): Promise<Finding[]> {
  const out: Promise<Finding>[] = [];
  if (config?.telemetry.mqtt) out.push(brokerFinding(config.telemetry.mqtt));
  if (config?.upload?.transport === 'http') for (const url of config.upload.collector.urls) out.push(collectorFinding(url));
  return Promise.all(out);
}

/** The starter config's placeholder name: every board would report as the same device. */
export function nameFinding(config: OutpostConfig | null, configFile: string): Finding[] {
  if (config?.node.name !== 'CHANGE-ME') return [];
  return [
    {
      check: 'node name',
      ok: false,
      detail: 'node.name is CHANGE-ME: this board would take the same device id as every other unnamed one',
      fix: `set node.name in ${configFile} to this board's name, then sudo systemctl restart outpost`,
    },
  ];
}
