import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeys, type PublicKeys } from '../../../crypto/index.js';
import { freePort } from '../../common.js';
import { ManagedProcess } from './managedProcess.js';

const CLI = fileURLToPath(new URL('../../../cli.js', import.meta.url));

interface Agent {
  name: string;
  dir: string;
  keys: PublicKeys;
  statusPort: number;
  offloadPort: number;
}

/**
 * The chaos run's fleet on loopback: a Mosquitto, an HTTP and an MQTT collector sharing one store, and three
 * agents: `cam-a` uploads over HTTP, `cam-b` over MQTT, both offload their detector to `helper`, which serves.
 * Every agent is on the broker (telemetry, signed commands from the operator key made here).
 */
export class ChaosTopology {
  readonly processes: ManagedProcess[] = [];
  readonly agents: { name: string; statusPort: number; process: ManagedProcess; uploads: boolean }[] = [];
  readonly out: string;
  readonly operatorKeys: string;
  /** the devices' public keys: the collectors' --trust, and the operator's for signed answers */
  readonly trust: string;
  brokerUrl = '';

  private constructor(readonly dir: string) {
    this.out = join(dir, 'collected');
    this.operatorKeys = join(dir, 'operator');
    this.trust = join(dir, 'trust.yaml');
  }

  static async create(dir: string, opts: { fps: number }): Promise<ChaosTopology> {
    const t = new ChaosTopology(dir);
    await t.build(opts.fps);
    return t;
  }

  byName(name: string): ManagedProcess {
    const p = this.processes.find((x) => x.name === name);
    if (!p) throw new Error(`no chaos process ${name}`);
    return p;
  }

  private async build(fps: number): Promise<void> {
    const brokerPort = await freePort();
    const collectorPort = await freePort();
    this.brokerUrl = `mqtt://127.0.0.1:${brokerPort}`;
    const operator = generateKeys(this.operatorKeys);
    const collectorDir = join(this.dir, 'collector');
    const collector = generateKeys(collectorDir);
    const agents: Agent[] = [];
    for (const name of ['cam-a', 'cam-b', 'helper']) {
      const adir = join(this.dir, name);
      agents.push({ name, dir: adir, keys: generateKeys(join(adir, 'state', 'keys')), statusPort: await freePort(), offloadPort: await freePort() });
    }
    const trust = this.trust;
    writeFileSync(trust, agents.map((a) => `- { name: ${a.name}, sign: ${a.keys.sign}, box: ${a.keys.box} }`).join('\n') + '\n');
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${brokerPort} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n`);

    this.processes.push(new ManagedProcess('broker', 'mosquitto', ['-c', conf]));
    const collect = ['--keys', collectorDir, '--trust', trust, '--out', this.out];
    this.processes.push(new ManagedProcess('collector-http', process.execPath, [CLI, 'collect', '--listen', `127.0.0.1:${collectorPort}`, ...collect]));
    const mqttCollectorPort = await freePort();
    this.processes.push(
      new ManagedProcess('collector-mqtt', process.execPath, [
        CLI,
        'collect',
        '--listen',
        `127.0.0.1:${mqttCollectorPort}`,
        '--mqtt',
        this.brokerUrl,
        ...collect,
      ]),
    );
    const [a, b, helper] = agents;
    const keyring = [
      `  - { name: ops, sign: ${operator.sign}, box: ${operator.box}, roles: [operator] }`,
      `  - { name: hq, sign: ${collector.sign}, box: ${collector.box}, roles: [collector] }`,
      ...agents.map((x) => `  - { name: ${x.name}, sign: ${x.keys.sign}, box: ${x.keys.box}, roles: [peer] }`),
    ].join('\n');
    const http = `transport: http, collector: { url: "http://127.0.0.1:${collectorPort}", key: hq }`;
    const mqtt = `transport: mqtt, collector: { key: hq }`;
    for (const [agent, upload] of [
      [a, http],
      [b, mqtt],
      [helper, null],
    ] as const) {
      const file = join(agent.dir, 'outpost.yaml');
      mkdirSync(agent.dir, { recursive: true });
      writeFileSync(file, this.agentConfig(agent, keyring, upload, agent === helper ? null : helper, fps));
      const p = new ManagedProcess(agent.name, process.execPath, [CLI, 'run', '--config', file]);
      this.processes.push(p);
      this.agents.push({ name: agent.name, statusPort: agent.statusPort, process: p, uploads: upload !== null });
    }
  }

  private agentConfig(a: Agent, keyring: string, upload: string | null, peer: Agent | null, fps: number): string {
    return `node: { name: ${a.name}, stateDir: ${join(a.dir, 'state')} }
keyring:
${keyring}
${peer ? `cameras:\n  - { name: door, source: { type: demo, width: 320, height: 240, fps: ${fps} } }` : ''}
models:
  det: { file: builtin:ppocrv4-det }
pipelines:
  text: { stages: [{ name: detect, model: det, decoder: { type: db, maxSide: 320 } }] }
runtime: { providers: [cpu], threads: 1, inflightFrames: 1 }
status: { port: ${a.statusPort} }
power: { enabled: false }
offload:
  serve: { enabled: ${peer === null}, host: 127.0.0.1, port: ${a.offloadPort}, advertise: "http://127.0.0.1:${a.offloadPort}" }
  peers: [${peer ? `{ name: ${peer.name}, url: "http://127.0.0.1:${peer.offloadPort}" }` : ''}]
  stages: { text: [detect] }
  placement: { timeoutMs: 3000 }
telemetry: { mqtt: { url: "${this.brokerUrl}", reconnect: { initialMs: 200, maxMs: 2000 } } }
${upload ? `upload: { ${upload}, frames: { include: false }, delivery: { retry: { initialMs: 200, maxMs: 2000 }, batchItems: 16, timeoutSeconds: 5 } }` : ''}
logging: { format: json, results: false }
`;
  }
}
