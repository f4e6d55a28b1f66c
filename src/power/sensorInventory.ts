import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SensorEntry {
  kind: 'thermal_zone' | 'hwmon' | 'power_supply';
  path: string;
  name: string;
  /** °C for thermal sensors, the supply's type for power supplies; null when unreadable. */
  reading: string | null;
}

async function readTrim(file: string): Promise<string | null> {
  return (await readFile(file, 'utf8').catch(() => null))?.trim() ?? null;
}

async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

const celsius = (milli: string | null) => (milli !== null && /^-?\d+$/.test(milli) ? `${(Number(milli) / 1000).toFixed(1)} °C` : null);

/** What sensors the board exposes under `root` (thermal zones, hwmon chips, power supplies). */
export async function sensorInventory(root = '/'): Promise<SensorEntry[]> {
  const out: SensorEntry[] = [];
  const thermal = join(root, 'sys/class/thermal');
  for (const z of (await entries(thermal)).filter((n) => n.startsWith('thermal_zone'))) {
    out.push({ kind: 'thermal_zone', path: join(thermal, z), name: (await readTrim(join(thermal, z, 'type'))) ?? z, reading: celsius(await readTrim(join(thermal, z, 'temp'))) });
  }
  const hwmon = join(root, 'sys/class/hwmon');
  for (const h of await entries(hwmon)) {
    out.push({ kind: 'hwmon', path: join(hwmon, h), name: (await readTrim(join(hwmon, h, 'name'))) ?? h, reading: celsius(await readTrim(join(hwmon, h, 'temp1_input'))) });
  }
  const supplies = join(root, 'sys/class/power_supply');
  for (const s of await entries(supplies)) {
    out.push({ kind: 'power_supply', path: join(supplies, s), name: s, reading: await readTrim(join(supplies, s, 'type')) });
  }
  return out;
}
