import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type MqttConfig } from '../config/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import { redactUrl, type BrokerEvent, type BrokerOptions } from '../mqtt/index.js';
import { BROKER_URL, DEVICE_ID } from '../vocabulary.js';

/** The broker flags every operator tool takes (commander's camelCase names). */
export interface BrokerFlags {
  config?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  cert?: string;
  certKey?: string;
  base?: string;
}

/** Where and how an operator tool reaches the broker, flags over the node config's telemetry.mqtt. */
export interface BrokerTarget {
  url: string;
  base: string;
  options: BrokerOptions;
}

/** Adds the login and TLS flags (and --config to reuse a node's telemetry.mqtt) to an operator tool. */
export function withBrokerFlags(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', "reuse a node config's telemetry.mqtt (url, login, certificates, base topic); flags override it")
    .option('--username <name>', 'broker user name')
    .option('--password-file <file>', 'a file holding the broker password (trailing newline ignored)')
    .option('--ca <file>', 'CA certificate (PEM) for mqtts:// and wss://')
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--cert-key <file>', 'the private key of --cert (PEM)');
}

/** A commander parser for seconds: a number above 0, else a usage error naming the value. */
export function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number of seconds above 0, such as 10 or 0.5');
  return n;
}

/** A broker URL the config would take too, or a usage error that says how to write it. */
export function checkBrokerUrl(url: string, where: string): string {
  if (BROKER_URL.test(url)) return url;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1].toLowerCase();
  const rest = scheme ? url.slice(scheme.length + 3) : url;
  const fix = scheme === 'https' ? `mqtts://${rest} (or wss://${rest})` : `mqtt://${rest}`;
  const why = scheme ? `${scheme}:// is not a broker scheme` : 'it has no scheme';
  throw new OutpostError(
    'OUTPOST_E_USAGE',
    `${where} ${url}: ${why}; a broker URL is mqtt://, mqtts://, ws:// or wss:// and a host, such as ${rest && !/\s/.test(rest) ? fix : 'mqtt://host:1883'}`,
  );
}

/** A device id that is one safe topic level, checked before anything is sent. */
export function checkDeviceId(device: string): string {
  if (DEVICE_ID.test(device)) return device;
  throw new OutpostError(
    'OUTPOST_E_USAGE',
    `device id ${JSON.stringify(device)} cannot be a topic level: use letters, digits, "-" and "_" (no "+", "#", "/" or spaces), as in telemetry.mqtt.deviceId`,
  );
}

function checkBase(base: string): string {
  if (base.split('/').every((l) => /^[A-Za-z0-9_.-]+$/.test(l))) return base;
  throw new OutpostError('OUTPOST_E_USAGE', `--base ${JSON.stringify(base)}: levels of letters, digits, ".", "-" and "_" only (no "+", "#" or empty level)`);
}

function nodeMqtt(file: string): MqttConfig {
  const mqtt = loadConfig(file).config.telemetry.mqtt;
  if (!mqtt) throw new OutpostError('OUTPOST_E_USAGE', `--config ${file} has no telemetry.mqtt to reuse; give --broker URL instead`);
  return mqtt;
}

function readPassword(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new OutpostError('OUTPOST_E_IO', `cannot read --password-file ${file} (${errorMessage(err)})`, { cause: err });
  }
}

/** The broker URL (from `flag`, else --config), its base topic and login, each checked. */
export function brokerTarget(url: string | undefined, flags: BrokerFlags, flag = '--broker'): BrokerTarget {
  const node = flags.config ? nodeMqtt(flags.config) : undefined;
  const chosen = url ?? node?.url;
  if (!chosen) throw new OutpostError('OUTPOST_E_USAGE', `${flag} URL is needed (or --config FILE of a node with telemetry.mqtt)`);
  checkBrokerUrl(chosen, url ? flag : `${flags.config}: telemetry.mqtt.url`);
  return {
    url: chosen,
    base: checkBase(flags.base ?? node?.baseTopic ?? 'outpost'),
    options: {
      username: flags.username ?? node?.username,
      password: flags.passwordFile ? readPassword(flags.passwordFile) : node?.password,
      ca: flags.ca ?? node?.ca,
      cert: flags.cert ?? node?.cert,
      key: flags.certKey ?? node?.key,
    },
  };
}

/** Backoff for an operator tool: quick first retries (a broker restart), at most 30 s apart. */
export function reconnecting(onEvent: (e: BrokerEvent) => void): NonNullable<BrokerOptions['reconnect']> {
  return { initialMs: 500, maxMs: 30_000, onEvent };
}

/** One line for a link event: what the operator sees on stderr (or in the collector's log). */
export function describeBrokerEvent(url: string, e: BrokerEvent): string {
  return e.kind === 'lost'
    ? `lost the broker ${redactUrl(url)} (${e.error ?? 'connection closed'}); reconnecting in ${(e.retryInMs / 1000).toFixed(1)} s (attempt ${e.attempt})`
    : `reconnected to the broker ${redactUrl(url)} after ${e.attempts} attempt${e.attempts === 1 ? '' : 's'}`;
}
