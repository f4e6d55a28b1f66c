import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema, type PowerConfig } from '../config/index.js';
import { OutpostError } from '../errors.js';
import { BoardSensors, Governor, type SensorSnapshot } from '../power/index.js';

/** The level one snapshot implies on its own (no dwell, no trend): what the governor would head for. */
function impliedLevel(snapshot: SensorSnapshot, cfg: PowerConfig) {
  const g = new Governor({ ...cfg, dwellSeconds: { up: 0, down: 0 }, trend: { ...cfg.trend, enabled: false } }, snapshot.at);
  g.update(snapshot);
  return g.state;
}

function render(s: SensorSnapshot, level: ReturnType<typeof impliedLevel>): string {
  const lines = [`board         ${s.board.model ?? 'unknown model'} (${s.board.family})`];
  lines.push(`temperature   ${s.temperature ? `${s.temperature.celsius.toFixed(1)} °C from ${s.temperature.source}` : 'missing'}`);
  for (const t of s.thermal)
    lines.push(
      `  ${t.name.padEnd(24)} ${t.celsius === null ? 'unavailable' : `${t.celsius.toFixed(1)} °C`}${t.trips.length ? `  trips: ${t.trips.map((x) => `${x.type} ${x.celsius} °C`).join(', ')}` : ''}`,
    );
  if (s.throttle) {
    const on = (f: Record<string, boolean>) =>
      Object.entries(f)
        .filter(([, v]) => v)
        .map(([k]) => k)
        .join(', ') || 'none';
    lines.push(
      `throttling    0x${s.throttle.raw.toString(16)} (${s.throttle.source}): now ${on({ ...s.throttle.now })}; since boot ${on({ ...s.throttle.sinceBoot })}`,
    );
  }
  if (s.piUnderVoltageAlarm !== null) lines.push(`rpi_volt      under-voltage alarm ${s.piUnderVoltageAlarm ? 'ON' : 'off'}`);
  if (s.pi5MaxCurrentMa !== null)
    lines.push(`supply limit  ${s.pi5MaxCurrentMa} mA${s.pi5MaxCurrentMa < 5000 ? ' (below 5000 mA: USB current is capped)' : ''}`);
  for (const r of s.rails) lines.push(`rail          ${r.name.padEnd(16)} ${r.volts ?? '?'} V  ${r.amps ?? '?'} A  ${r.watts ?? '?'} W`);
  if (s.nvpmodel) lines.push(`nvpmodel      ${s.nvpmodel.name} (${s.nvpmodel.id ?? '?'})`);
  if (s.gpuLoadPercent !== null) lines.push(`gpu load      ${s.gpuLoadPercent} %`);
  for (const p of s.supplies)
    lines.push(
      `supply        ${p.name} ${p.type} ${p.status ?? ''} ${p.capacityPercent ?? '?'} %  ${p.volts ?? '?'} V  ${p.amps ?? '?'} A  online ${p.online ?? '?'}`,
    );
  const freqs = Object.entries(s.cpuFreqMHz);
  if (freqs.length) lines.push(`cpufreq       ${freqs.map(([c, f]) => `${c} ${f} MHz`).join(', ')}`);
  lines.push(`power state   ${s.powerState}`);
  for (const m of s.missing) lines.push(`missing       ${m}`);
  lines.push(
    `level         ${level.level} (thresholds warm ${level.thresholds.warm} / hot ${level.thresholds.hot} / critical ${level.thresholds.critical} °C)`,
  );
  return lines.join('\n') + '\n';
}

/** `outpost sensors`: what the board's sensors say, with units, and the governor level they imply. */
export async function sensorsCommand(opts: { root?: string; json?: boolean }): Promise<void> {
  const cfg = configSchema.parse({}).power;
  const root = resolve(opts.root ?? cfg.sysfsRoot);
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new OutpostError('OUTPOST_E_USAGE', `--root ${opts.root} is not a folder; pass a copy of a board's / (with sys/ and proc/ under it)`);
  const snapshot = await new BoardSensors({ root, lowBatteryPercent: cfg.lowBatteryPercent }).read();
  const level = impliedLevel(snapshot, cfg);
  process.stdout.write(
    opts.json ? JSON.stringify({ root, ...snapshot, level: level.level, thresholds: level.thresholds }, null, 2) + '\n' : render(snapshot, level),
  );
}
