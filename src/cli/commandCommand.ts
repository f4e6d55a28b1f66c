import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readKeys, SealedEnvelope, signMessage } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import { writeError } from '../log.js';
import { openBroker } from '../mqtt/index.js';
import { brokerTarget, checkDeviceId, describeBrokerEvent, reconnecting, type BrokerFlags } from './brokerFlags.js';
import { keysFolder } from './common.js';

export interface CommandOptions extends BrokerFlags {
  broker?: string;
  key: string;
  arg: string[];
  timeout: number;
  json?: boolean;
  /** snapshot: write the opened JPEG here */
  out?: string;
}

/** `--arg k=v`: v as JSON when it reads as JSON (numbers, booleans), else as text. */
function parseArgs(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new OutpostError('OUTPOST_E_USAGE', `--arg ${pair} is not key=value`);
    const [k, v] = [pair.slice(0, eq), pair.slice(eq + 1)];
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

interface Answer {
  status: 'ok' | 'refused' | 'error';
  data?: { envelope?: string } & Record<string, unknown>;
  error?: { reason: string; message: string };
}

/**
 * `outpost command DEVICE ACTION`: signs the command with the operator's key, publishes it with an MQTT v5
 * response topic and correlation data, waits for the answer. Exit 0 done, 1 refused (reason on stderr), 69 no
 * answer in time.
 */
export async function commandCommand(device: string, action: string, opts: CommandOptions): Promise<void> {
  checkDeviceId(device);
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(action))
    throw new OutpostError('OUTPOST_E_USAGE', `action ${JSON.stringify(action)} is not an action name (status, reload-config, set-precision, …)`);
  const target = brokerTarget(opts.broker, opts);
  const keys = readKeys(keysFolder(opts.key, '--key'));
  const args = parseArgs(opts.arg);
  const correlation = randomBytes(12);
  const message = { ...signMessage({ purpose: 'command', target: device, action, args }, keys.sign), correlationId: correlation.toString('hex') };
  const responseTopic = `${target.base}/${device}/response/${action}`;
  const client = await openBroker(target.url, {
    ...target.options,
    clientId: `outpost-operator-${correlation.toString('hex', 0, 4)}`,
    reconnect: reconnecting((e) => writeError(`outpost: ${describeBrokerEvent(target.url, e)}`)),
  });
  try {
    const answer = new Promise<Answer>((resolve) => {
      client.on('message', (topic, payload, packet) => {
        const cd = packet.properties?.correlationData;
        let body: Answer & { correlationId?: string };
        try {
          body = JSON.parse(payload.toString('utf8'));
        } catch {
          return;
        }
        if (topic === responseTopic && ((cd && Buffer.from(cd).equals(correlation)) || body.correlationId === message.correlationId)) resolve(body);
      });
    });
    await client.subscribeAsync(responseTopic, { qos: 1 });
    await client.publishAsync(`${target.base}/${device}/command/${action}`, JSON.stringify(message), {
      qos: 1,
      properties: { responseTopic, correlationData: correlation },
    });
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), opts.timeout * 1000).unref());
    const reply = await Promise.race([answer, timeout]);
    if (!reply) throw new OutpostError('OUTPOST_E_UNREACHABLE', `no answer from ${device} within ${opts.timeout} s (is it online? outpost monitor shows it)`);
    if (reply.status !== 'ok')
      throw new OutpostError(
        'OUTPOST_E_REFUSED',
        `${device} ${reply.status === 'refused' ? 'refused' : 'failed'} ${action}: ${reply.error?.reason}: ${reply.error?.message}`,
      );
    if (opts.out && reply.data?.envelope) {
      const opened = new SealedEnvelope(keys.box).open(Buffer.from(reply.data.envelope, 'base64'));
      writeFileSync(opts.out, opened.payload);
      reply.data = { ...opened.header, file: opts.out, bytes: opened.payload.length };
    }
    process.stdout.write(opts.json ? JSON.stringify(reply) + '\n' : `${device} ${action}: ok\n${JSON.stringify(reply.data ?? {}, null, 2)}\n`);
  } finally {
    await client.endAsync();
  }
}
