import { checkAnswer, fromB64 } from '../crypto/index.js';
import type { ReportBody } from '../deploy/index.js';
import type { MqttClient } from '../mqtt/index.js';
import type { TrustListEntry } from '../config/index.js';

/** One device's row of a deployment: its latest signed report. */
export interface DeviceReport extends ReportBody {
  device: string;
}

/**
 * The fleet's reports of one deployment, each checked against the device's key in the operator's trust file
 * (a report from anyone else, or for another deployment, is ignored and counted).
 */
export class DeploymentReports {
  readonly rows = new Map<string, DeviceReport>();
  /** the newest answeredAt taken per device */
  private readonly answeredAt = new Map<string, number>();
  ignored = 0;
  private readonly keys: Map<string, Uint8Array>;
  private readonly listeners: ((row: DeviceReport) => void)[] = [];

  constructor(
    private readonly base: string,
    private readonly id: string,
    trust: readonly TrustListEntry[],
  ) {
    this.keys = new Map(trust.filter((t) => t.sign).map((t) => [t.name, fromB64(t.sign!)!]));
  }

  /** Subscribes to every device's retained `deployment` topic. */
  async follow(client: MqttClient): Promise<void> {
    client.on('message', (topic, payload) => this.take(topic, payload));
    await client.subscribeAsync(`${this.base}/+/deployment`, { qos: 1 });
  }

  onChange(fn: (row: DeviceReport) => void): void {
    this.listeners.push(fn);
  }

  private take(topic: string, payload: Buffer): void {
    const [device, kind, extra] = topic.slice(this.base.length + 1).split('/');
    if (kind !== 'deployment' || extra !== undefined) return;
    const key = this.keys.get(device);
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      body = null;
    }
    if ((body as { request?: unknown } | null)?.request !== this.id) return; // another deployment's report
    const checked = key ? checkAnswer(body, { device, action: 'deployment', request: this.id, deviceKey: key }) : null;
    if (!checked?.ok) return void this.ignored++;
    // a replayed older report (retained by anyone) never replaces a newer one
    const at = checked.answer.answeredAt;
    if ((this.answeredAt.get(device) ?? -Infinity) > at) return void this.ignored++;
    this.answeredAt.set(device, at);
    const row = { device, ...(checked.answer.data as ReportBody) };
    this.rows.set(device, row);
    for (const fn of this.listeners) fn(row);
  }

  /** Resolves when every one of `devices` has ended (passed or failed), or one failed; false on timeout. */
  settled(devices: readonly string[], timeoutMs: number, done = (r: DeviceReport) => r.result !== 'running'): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        const rows = devices.map((d) => this.rows.get(d));
        if (rows.some((r) => r?.result === 'failed') || rows.every((r) => r && done(r))) resolve(true);
      };
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.onChange(check);
      check();
    });
  }
}

/** The fleet table: device, step, result, reason, time. */
export function reportTable(rows: readonly DeviceReport[], waiting: readonly string[] = []): string {
  const lines = [
    ['DEVICE', 'STEP', 'RESULT', 'REASON', 'TIME'],
    ...rows.map((r) => [r.device, r.step, r.result, r.reason ?? '', r.at]),
    ...waiting.map((d) => [d, '-', 'no report', '', '']),
  ];
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return (
    lines
      .map((l) =>
        l
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
