import type { SysfsTree } from './sysfs.js';

export interface TripPoint {
  type: string;
  celsius: number;
}

export interface ThermalReading {
  /** thermal zone type, or `hwmon name/label` */
  name: string;
  source: string;
  celsius: number | null;
  trips: TripPoint[];
}

/** Zones that do not measure the board: a constant 100 °C PMIC on JetPack 4, an estimate for the fan. */
const IGNORED_ZONES = new Set(['PMIC-Die', 'thermal-fan-est']);

/** Readings a board can really have. Outside, the sensor is absent or broken (Jetson Orin reports -256 °C for an absent `cv0-thermal`). */
const PLAUSIBLE_C = { min: -40, max: 150 } as const;

const celsius = (milli: number | null) => (milli === null ? null : milli / 1000);

/** A temperature reading, or null ("unavailable") when it cannot be a real board temperature. */
const reading = (milli: number | null) => {
  const c = celsius(milli);
  return c !== null && c >= PLAUSIBLE_C.min && c <= PLAUSIBLE_C.max ? c : null;
};

/** /sys/class/thermal/thermal_zone*: type, temp (m°C) and trip points. */
export async function readThermalZones(fs: SysfsTree): Promise<ThermalReading[]> {
  const out: ThermalReading[] = [];
  for (const zone of (await fs.list('sys/class/thermal')).filter((z) => z.startsWith('thermal_zone'))) {
    const dir = `sys/class/thermal/${zone}`;
    const name = (await fs.text(`${dir}/type`)) ?? zone;
    if (IGNORED_ZONES.has(name)) continue;
    const trips: TripPoint[] = [];
    for (const f of (await fs.list(dir)).filter((f) => /^trip_point_\d+_temp$/.test(f))) {
      const t = celsius(await fs.int(`${dir}/${f}`));
      const type = await fs.text(`${dir}/${f.replace('_temp', '_type')}`);
      if (t !== null && type) trips.push({ type, celsius: t });
    }
    out.push({ name, source: `/${dir}/temp`, celsius: reading(await fs.int(`${dir}/temp`)), trips });
  }
  return out;
}

/** /sys/class/hwmon/hwmon*: temp*_input with their labels (CPU packages on x86, NVMe, ...). */
export async function readHwmonTemps(fs: SysfsTree): Promise<ThermalReading[]> {
  const out: ThermalReading[] = [];
  for (const hw of await fs.list('sys/class/hwmon')) {
    const dir = `sys/class/hwmon/${hw}`;
    const chip = (await fs.text(`${dir}/name`)) ?? hw;
    for (const f of (await fs.list(dir)).filter((f) => /^temp\d+_input$/.test(f))) {
      const label = await fs.text(`${dir}/${f.replace('_input', '_label')}`);
      const crit = celsius(await fs.int(`${dir}/${f.replace('_input', '_crit')}`));
      out.push({
        name: label ? `${chip}/${label}` : chip,
        source: `/${dir}/${f}`,
        celsius: reading(await fs.int(`${dir}/${f}`)),
        trips: crit !== null ? [{ type: 'critical', celsius: crit }] : [],
      });
    }
  }
  return out;
}
