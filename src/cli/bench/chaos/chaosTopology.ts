import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeys } from '../../../crypto/index.js';
import { freePort } from '../../common.js';
import { agentConfig, keyringEntry, makeAgent, type AgentShape, type BenchAgent } from '../benchAgent.js';
import { ManagedProcess } from './managedProcess.js';

const CLI = fileURLToPath(new URL('../../../cli.js', import.meta.url));

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
    this.brokerUrl = `mqtt://127.0.0.1:${brokerPort}`;
    const operator = generateKeys(this.operatorKeys);
    const collectorDir = join(this.dir, 'collector');
    const collector = generateKeys(collectorDir);
    const agents: BenchAgent[] = [];
    for (const name of ['cam-a', 'cam-b', 'helper']) agents.push(await makeAgent(this.dir, name));
    writeFileSync(this.trust, agents.map((a) => `- { name: ${a.name}, sign: ${a.keys.sign}, box: ${a.keys.box} }`).join('\n') + '\n');
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${brokerPort} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n`);
    this.processes.push(new ManagedProcess('broker', 'mosquitto', ['-c', conf]));
    const collectorPort = await this.startCollectors(collectorDir);
    const keyring = [
      keyringEntry('ops', operator, 'operator'),
      keyringEntry('hq', collector, 'collector'),
      ...agents.map((x) => keyringEntry(x.name, x.keys, 'peer')),
    ];
    const [a, b, helper] = agents;
    const http = { transport: 'http', collector: { url: `http://127.0.0.1:${collectorPort}`, key: 'hq' } };
    const mqtt = { transport: 'mqtt', collector: { key: 'hq' } };
    for (const [agent, upload] of [
      [a, http],
      [b, mqtt],
      [helper, null],
    ] as const) {
      const file = join(agent.dir, 'outpost.yaml');
      writeFileSync(file, this.agentConfig(agent, keyring, upload, agent === helper ? null : helper, fps));
      const p = new ManagedProcess(agent.name, process.execPath, [CLI, 'run', '--config', file]);
      this.processes.push(p);
      this.agents.push({ name: agent.name, statusPort: agent.statusPort, process: p, uploads: upload !== null });
    }
  }

  /** An HTTP collector and an MQTT one sharing the store; the HTTP one's port. */
  private async startCollectors(keysDir: string): Promise<number> {
    const collect = ['--keys', keysDir, '--trust', this.trust, '--out', this.out];
    const httpPort = await freePort();
    const mqttPort = await freePort();
    this.processes.push(new ManagedProcess('collector-http', process.execPath, [CLI, 'collect', '--listen', `127.0.0.1:${httpPort}`, ...collect]));
    this.processes.push(
      new ManagedProcess('collector-mqtt', process.execPath, [CLI, 'collect', '--listen', `127.0.0.1:${mqttPort}`, '--mqtt', this.brokerUrl, ...collect]),
    );
    return httpPort;
  }

  /** A camera agent offloads to the helper and uploads; the helper only serves. All are on the broker. */
  private agentConfig(a: BenchAgent, keyring: AgentShape['keyring'], upload: Record<string, unknown> | null, peer: BenchAgent | null, fps: number): string {
    const retry = { initialMs: 200, maxMs: 2000 };
    return agentConfig(a, {
      keyring,
      camera: peer ? { type: 'demo', width: 320, height: 240, fps } : undefined,
      maxSide: 320,
      inflightFrames: 1,
      serve: peer === null,
      peers: peer ? [peer] : [],
      placement: { timeoutMs: 3000 },
      sections: {
        telemetry: { mqtt: { url: this.brokerUrl, reconnect: retry } },
        ...(upload ? { upload: { ...upload, frames: { include: false }, delivery: { retry, batchItems: 16, timeoutSeconds: 5 } } } : {}),
      },
    });
  }
}
