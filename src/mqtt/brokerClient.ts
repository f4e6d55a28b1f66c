import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { brokerConnectError } from './brokerErrors.js';

export type { MqttClient };

export interface BrokerOptions {
  clientId?: string;
  username?: string;
  password?: string;
  /** CA certificate file (PEM) for mqtts:// and wss:// */
  ca?: string;
  timeoutMs?: number;
}

/**
 * A plain MQTT v5 client for the operator's tools (monitor, command, bench): connected, or an error naming the
 * broker within the timeout. The daemon itself uses MqttLink, which adds a node's birth, will and backoff.
 */
export async function openBroker(url: string, opts: BrokerOptions = {}): Promise<MqttClient> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  try {
    return await mqtt.connectAsync(url, {
      protocolVersion: 5,
      clientId: opts.clientId,
      username: opts.username,
      password: opts.password,
      ca: opts.ca ? readFileSync(opts.ca) : undefined,
      connectTimeout: timeoutMs,
      reconnectPeriod: 0,
    });
  } catch (err) {
    throw brokerConnectError(url, err, '--username and --password');
  }
}
