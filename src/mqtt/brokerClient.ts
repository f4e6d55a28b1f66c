import { readFileSync } from 'node:fs';
import { Backoff } from '../backoff.js';
import mqtt, { type MqttClient } from 'mqtt';
import { OutpostError, errorMessage } from '../errors.js';
import { brokerConnectError } from './brokerErrors.js';

export type { MqttClient };

/** What an operator's client says about its link after the first connection. */
export type BrokerEvent = { kind: 'lost'; error: string | null; retryInMs: number; attempt: number } | { kind: 'back'; attempts: number };

export interface BrokerOptions {
  clientId?: string;
  username?: string;
  password?: string;
  /** CA certificate file (PEM) for mqtts:// and wss:// */
  ca?: string;
  /** client certificate and its key (PEM files) */
  cert?: string;
  key?: string;
  /** asked of the broker in CONNECT (MQTT v5 Maximum Packet Size): it drops larger messages instead of sending them */
  maxPacketBytes?: number;
  /** the first connection must succeed within this; later ones are retried */
  timeoutMs?: number;
  /** after the first connection: reconnect with exponential backoff and jitter, telling `onEvent` */
  reconnect?: { initialMs: number; maxMs: number; onEvent: (e: BrokerEvent) => void; random?: () => number };
}

function file(path: string | undefined, what: string): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new OutpostError('OUTPOST_E_IO', `cannot read the ${what} file ${path} (${errorMessage(err)})`, { cause: err });
  }
}

/**
 * A plain MQTT v5 client for the operator's tools (monitor, command, collect, bench): connected, or an error naming
 * the broker within the timeout. With `reconnect`, a connection lost later is retried with exponential backoff and
 * jitter (mqtt.js's own retry is a fixed period) and mqtt.js subscribes again on each return. The daemon itself
 * uses MqttLink, which adds a node's birth and will.
 */
export async function openBroker(url: string, opts: BrokerOptions = {}): Promise<MqttClient> {
  const options = {
    protocolVersion: 5 as const,
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    ca: file(opts.ca, 'CA certificate'),
    cert: file(opts.cert, 'client certificate'),
    key: file(opts.key, 'client key'),
    connectTimeout: opts.timeoutMs ?? 10_000,
    reconnectPeriod: 0, // ours backs off with jitter
    ...(opts.maxPacketBytes ? { properties: { maximumPacketSize: opts.maxPacketBytes } } : {}),
  };
  let client: MqttClient;
  try {
    client = await mqtt.connectAsync(url, options);
  } catch (err) {
    throw brokerConnectError(url, err, '--username and --password-file (or telemetry.mqtt of --config)');
  }
  if (opts.reconnect) {
    // mqtt.js records subscriptions to make again only when it may reconnect; its own fixed-period timer is
    // pushed out of the way (every attempt clears it) and keepConnected paces the attempts
    client.options.reconnectPeriod = 3_600_000;
    keepConnected(client, opts.reconnect);
  }
  return client;
}

/** Retries a lost connection until the client is ended: the delay doubles up to maxMs, each drawn in [½, 1] of it. */
function keepConnected(client: MqttClient, r: NonNullable<BrokerOptions['reconnect']>): void {
  const backoff = new Backoff(r, r.random);
  let attempts = 0;
  let lastError: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  client.on('error', (err) => (lastError = errorMessage(err)));
  client.on('connect', () => {
    if (attempts > 0) r.onEvent({ kind: 'back', attempts });
    backoff.reset();
    [attempts, lastError] = [0, null];
  });
  client.on('close', () => {
    if (client.disconnecting || timer) return; // ended by us, or a retry is already due
    const delay = backoff.next();
    attempts++;
    r.onEvent({ kind: 'lost', error: lastError, retryInMs: delay, attempt: attempts });
    timer = setTimeout(() => {
      timer = null;
      // the same stores: a QoS 1 message not yet acknowledged is sent again, not dropped
      if (!client.disconnecting) client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delay);
  });
  client.once('end', () => timer && clearTimeout(timer));
}
