import si from 'systeminformation';
import { readJetsonGpuLoad, readJetsonRails, readNvpmodel, type PowerRail } from './jetson.js';
import { readCpuFreqs, readPowerSupplies, type PowerSupplyReading } from './powerSupply.js';
import { readBoardModel, readPi5MaxCurrent, readPiVoltAlarm, readThrottled, type ThrottleState } from './raspberryPi.js';
import { runCommand, SysfsTree, type CommandRunner } from './sysfs.js';
import { readHwmonTemps, readThermalZones, type ThermalReading, type TripPoint } from './thermal.js';

export type BoardFamily = 'raspberry-pi' | 'jetson' | 'generic';
import type { PowerState } from '../vocabulary.js';

export interface SensorSnapshot {
  at: number;
  board: { model: string | null; family: BoardFamily };
  /** Every temperature read, thermal zones first. */
  thermal: ThermalReading[];
  /** The temperature the governor acts on: the hottest CPU/SoC/GPU sensor. */
  temperature: { celsius: number; source: string; trips: TripPoint[] } | null;
  throttle: ThrottleState | null;
  piUnderVoltageAlarm: boolean | null;
  pi5MaxCurrentMa: number | null;
  rails: PowerRail[];
  nvpmodel: { name: string; id: number | null } | null;
  gpuLoadPercent: number | null;
  supplies: PowerSupplyReading[];
  cpuFreqMHz: Record<string, number>;
  powerState: PowerState;
  /** Sensors looked for and not found (listed as missing, never reported as zero). */
  missing: string[];
}

const BOARD_TEMP = /cpu|soc|gpu|tj-|x86_pkg|package|tctl|core/i;
const JETSON_ZONES = /^(CPU-therm|GPU-therm|AO-therm|PLL-therm|cpu-thermal|gpu-thermal|tj-thermal|soc\d-thermal)$/;

export interface BoardSensorOptions {
  /** Folder that stands for `/` (fixture trees in tests). */
  root: string;
  run?: CommandRunner;
  /** Battery below this is battery-low. */
  lowBatteryPercent: number;
  /** When a reading is taken (the governor's trend is over these times). */
  now?: () => number;
}

/** Reads every board sensor Outpost knows under a root folder; missing ones are listed, not zeroed. */
export class BoardSensors {
  private readonly fs: SysfsTree;
  private readonly run: CommandRunner;

  constructor(private readonly opts: BoardSensorOptions) {
    this.fs = new SysfsTree(opts.root);
    this.run = opts.run ?? runCommand;
  }

  async read(): Promise<SensorSnapshot> {
    const fs = this.fs;
    const [zones, hwmon, throttle, piAlarm, maxCurrent, model, rails, nvpmodel, gpuLoad, supplies, cpuFreqMHz] = await Promise.all([
      readThermalZones(fs),
      readHwmonTemps(fs),
      readThrottled(fs, this.run),
      readPiVoltAlarm(fs),
      readPi5MaxCurrent(fs),
      readBoardModel(fs),
      readJetsonRails(fs),
      readNvpmodel(this.run),
      readJetsonGpuLoad(fs),
      readPowerSupplies(fs),
      readCpuFreqs(fs),
    ]);
    const thermal = [...zones, ...hwmon];
    const family: BoardFamily =
      /raspberry pi/i.test(model ?? '') || throttle
        ? 'raspberry-pi'
        : /jetson|nvidia/i.test(model ?? '') || zones.some((z) => JETSON_ZONES.test(z.name))
          ? 'jetson'
          : 'generic';
    const temperature = governingTemperature(zones, hwmon) ?? (this.opts.root === '/' ? await fallbackTemperature() : null);
    const missing = [
      ...(thermal.length === 0 ? ['thermal zones and hwmon temperatures'] : []),
      ...(temperature === null ? ['a board temperature'] : []),
      ...(family === 'raspberry-pi' && !throttle ? ['throttling word (vcgencmd or firmware get_throttled)'] : []),
      ...(family === 'jetson' && rails.length === 0 ? ['INA3221 power rails'] : []),
      ...(supplies.length === 0 ? ['power supplies'] : []),
      ...(Object.keys(cpuFreqMHz).length === 0 ? ['cpufreq'] : []),
    ];
    return {
      at: (this.opts.now ?? Date.now)(),
      board: { model, family },
      thermal,
      temperature,
      throttle,
      piUnderVoltageAlarm: piAlarm,
      pi5MaxCurrentMa: maxCurrent,
      rails,
      nvpmodel,
      gpuLoadPercent: gpuLoad,
      supplies,
      cpuFreqMHz,
      powerState: powerState(throttle, piAlarm, supplies, this.opts.lowBatteryPercent),
      missing,
    };
  }
}

function hottest(readings: ThermalReading[]): ThermalReading | undefined {
  return readings.filter((r) => r.celsius !== null).sort((a, b) => b.celsius! - a.celsius!)[0];
}

/** The hottest CPU/SoC/GPU zone, else the hottest zone, else hwmon's CPU sensors. */
function governingTemperature(zones: ThermalReading[], hwmon: ThermalReading[]): SensorSnapshot['temperature'] {
  const pick =
    hottest(zones.filter((z) => BOARD_TEMP.test(z.name))) ?? hottest(zones) ?? hottest(hwmon.filter((h) => BOARD_TEMP.test(h.name))) ?? hottest(hwmon);
  return pick ? { celsius: pick.celsius!, source: pick.source, trips: pick.trips } : null;
}

/** systeminformation only when sysfs gave nothing (it misses Jetson's CPU-therm and most batteries). */
async function fallbackTemperature(): Promise<SensorSnapshot['temperature']> {
  const t = await si.cpuTemperature().catch(() => null);
  return t && typeof t.main === 'number' && t.main > 0 ? { celsius: t.main, source: 'systeminformation', trips: [] } : null;
}

export function powerState(throttle: ThrottleState | null, piAlarm: boolean | null, supplies: PowerSupplyReading[], lowPercent: number): PowerState {
  if (throttle?.now.underVoltage || piAlarm === true) return 'undervoltage';
  const mainsOnline = supplies.some((s) => (s.type === 'Mains' || s.type === 'USB') && s.online === true);
  const draining = supplies.filter((s) => (s.type === 'Battery' || s.type === 'UPS') && s.status === 'Discharging');
  if (draining.length === 0 || mainsOnline) return 'mains';
  return draining.some((s) => s.capacityPercent !== null && s.capacityPercent < lowPercent) ? 'battery-low' : 'battery';
}
