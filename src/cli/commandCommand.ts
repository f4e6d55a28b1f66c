import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { checkAnswer, fromB64, readKeys, SealedEnvelope, sealedBy, signMessage, type SignedAnswer } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import { writeError } from '../log.js';
import { openBroker } from '../mqtt/index.js';
import { brokerTarget, checkDeviceId, describeBrokerEvent, reconnecting, type BrokerFlags } from './brokerFlags.js';
import { keysFolder } from './common.js';
import { readTrustFile } from './trustFile.js';

export interface CommandOptions extends BrokerFlags {
  broker?: string;
  key: string;
  /** the operator's list of device keys: [{ name, sign, box }] */
  trust: string;
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

/** The device's public keys from the operator's trust file (the list `outpost collect --trust` reads, each with `sign`). */
function deviceKeys(file: string, device: string): { sign: Uint8Array; box: string | undefined } {
  const entry = readTrustFile(file).find((e) => e.name === device);
  if (!entry?.sign)
    throw new OutpostError(
      'OUTPOST_E_CONFIG',
      `--trust ${file} has no sign key for ${device}: add { name: ${device}, sign: …, box: … } from outpost keys show on that device (an answer only counts when its key signs it)`,
    );
  return { sign: fromB64(entry.sign)!, box: entry.box };
}

/**
 * `outpost command DEVICE ACTION`: signs the command with the operator's key, publishes it with an MQTT v5
 * response topic and correlation data, and waits for an answer signed by DEVICE's key (from --trust) for this
 * very command. Anything else on the response topic (a forger answering first, an old answer) is ignored and
 * counted. Exit 0 done, 1 refused (reason on stderr), 69 no answer in time, 78 DEVICE not in the trust file.
 */
export async function commandCommand(device: string, action: string, opts: CommandOptions): Promise<void> {
  checkDeviceId(device);
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(action))
    throw new OutpostError('OUTPOST_E_USAGE', `action ${JSON.stringify(action)} is not an action name (status, reload-config, set-precision, …)`);
  const target = brokerTarget(opts.broker, opts);
  const keys = readKeys(keysFolder(opts.key, '--key'));
  const trusted = deviceKeys(opts.trust, device);
  const args = parseArgs(opts.arg);
  const correlation = randomBytes(12);
  const message = { ...signMessage({ purpose: 'command', target: device, action, args }, keys.sign), correlationId: correlation.toString('hex') };
  const want = { device, action, request: message.nonce, deviceKey: trusted.sign };
  const responseTopic = `${target.base}/${device}/response/${action}`;
  const client = await openBroker(target.url, {
    ...target.options,
    clientId: `outpost-operator-${correlation.toString('hex', 0, 4)}`,
    reconnect: reconnecting((e) => writeError(`outpost: ${describeBrokerEvent(target.url, e)}`)),
  });
  let ignored = 0;
  try {
    const answer = new Promise<SignedAnswer>((resolve) => {
      client.on('message', (topic, payload) => {
        if (topic !== responseTopic) return;
        let body: unknown;
        try {
          body = JSON.parse(payload.toString('utf8'));
        } catch {
          body = null;
        }
        const checked = checkAnswer(body, want);
        if (checked.ok) resolve(checked.answer);
        else ignored++; // a forger answering first cannot win: keep waiting for the device
      });
    });
    await client.subscribeAsync(responseTopic, { qos: 1 });
    await client.publishAsync(`${target.base}/${device}/command/${action}`, JSON.stringify(message), {
      qos: 1,
      properties: { responseTopic, correlationData: correlation },
    });
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), opts.timeout * 1000).unref());
    const reply = await Promise.race([answer, timeout]);
    if (!reply) {
      const forged = ignored ? `; ${ignored} answer(s) not signed by ${device}'s key for this command were ignored` : '';
      throw new OutpostError(
        'OUTPOST_E_UNREACHABLE',
        `no answer from ${device} within ${opts.timeout} s${forged} (is it online? outpost monitor shows it; a device does not answer a key it does not trust)`,
      );
    }
    if (reply.status !== 'ok')
      throw new OutpostError(
        'OUTPOST_E_REFUSED',
        `${device} ${reply.status === 'refused' ? 'refused' : 'failed'} ${action}: ${reply.error?.reason}: ${reply.error?.message}`,
      );
    const data = (reply.data ?? {}) as { envelope?: unknown } & Record<string, unknown>;
    let shown: unknown = data;
    if (opts.out && typeof data.envelope === 'string') {
      const sealed = Buffer.from(data.envelope, 'base64');
      if (trusted.box === undefined || sealedBy(sealed) !== trusted.box)
        throw new OutpostError(
          'OUTPOST_E_REFUSED',
          `the snapshot is not sealed by ${device}'s box key in ${opts.trust}${trusted.box ? '' : ' (its entry has none: add box from outpost keys show)'}; nothing written`,
        );
      const opened = new SealedEnvelope(keys.box).open(sealed);
      writeFileSync(opts.out, opened.payload);
      shown = { ...opened.header, file: opts.out, bytes: opened.payload.length };
    }
    process.stdout.write(
      opts.json ? JSON.stringify({ ...reply, data: shown, ignored }) + '\n' : `${device} ${action}: ok\n${JSON.stringify(shown, null, 2)}\n`,
    );
  } finally {
    await client.endAsync();
  }
}
