import type { SysfsTree } from './sysfs.js';

export interface PowerSupplyReading {
  name: string;
  type: string;
  online: boolean | null;
  capacityPercent: number | null;
  status: string | null;
  volts: number | null;
  amps: number | null;
}

/** /sys/class/power_supply/*: batteries, UPSes and mains adapters (µV and µA in sysfs). */
export async function readPowerSupplies(fs: SysfsTree): Promise<PowerSupplyReading[]> {
  const out: PowerSupplyReading[] = [];
  for (const name of await fs.list('sys/class/power_supply')) {
    const dir = `sys/class/power_supply/${name}`;
    const type = (await fs.text(`${dir}/type`)) ?? 'Unknown';
    const online = await fs.int(`${dir}/online`);
    const uv = await fs.int(`${dir}/voltage_now`);
    const ua = await fs.int(`${dir}/current_now`);
    out.push({
      name,
      type,
      online: online === null ? null : online === 1,
      capacityPercent: await fs.int(`${dir}/capacity`),
      status: await fs.text(`${dir}/status`),
      volts: uv === null ? null : uv / 1e6,
      amps: ua === null ? null : ua / 1e6,
    });
  }
  return out;
}

/** Current CPU frequencies in MHz (scaling_cur_freq is kHz; the firmware may throttle underneath). */
export async function readCpuFreqs(fs: SysfsTree): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const cpu of (await fs.list('sys/devices/system/cpu')).filter((c) => /^cpu\d+$/.test(c))) {
    const khz = await fs.int(`sys/devices/system/cpu/${cpu}/cpufreq/scaling_cur_freq`);
    if (khz !== null) out[cpu] = khz / 1000;
  }
  return out;
}
