import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from './paths.js';

/**
 * Sysfs trees of real boards, in the formats their kernels write: numbers as decimal text with a newline,
 * millidegrees, µV/µA for power supplies, the device-tree model NUL-terminated, max_current big-endian.
 */
type Tree = Record<string, string | Buffer>;

function build(tree: Tree): string {
  const root = tempDir('outpost-board-');
  for (const [path, content] of Object.entries(tree)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const zone = (n: number, type: string, milli: number, trips: [string, number][] = []): Tree => ({
  [`sys/class/thermal/thermal_zone${n}/type`]: `${type}\n`,
  [`sys/class/thermal/thermal_zone${n}/temp`]: `${milli}\n`,
  ...Object.fromEntries(
    trips.flatMap(([t, v], i) => [
      [`sys/class/thermal/thermal_zone${n}/trip_point_${i}_type`, `${t}\n`],
      [`sys/class/thermal/thermal_zone${n}/trip_point_${i}_temp`, `${v}\n`],
    ]),
  ),
});
const cpufreq = (cpus: number, khz: number): Tree =>
  Object.fromEntries(Array.from({ length: cpus }, (_, i) => [`sys/devices/system/cpu/cpu${i}/cpufreq/scaling_cur_freq`, `${khz}\n`]));
const model = (m: string): Tree => ({ 'proc/device-tree/model': `${m}\0` });
const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

export const boards = {
  /** Pi 4 on a weak supply: under-voltage now and since boot, throttled (firmware file, no vcgencmd). */
  pi4Throttled: () =>
    build({
      ...model('Raspberry Pi 4 Model B Rev 1.4'),
      ...zone(0, 'cpu-thermal', 81234, [['critical', 110000]]),
      'sys/devices/platform/soc/soc:firmware/get_throttled': '50005\n',
      'sys/class/hwmon/hwmon0/name': 'rpi_volt\n',
      'sys/class/hwmon/hwmon0/in0_lcrit_alarm': '1\n',
      ...cpufreq(4, 600000),
    }),
  pi4Ok: () =>
    build({
      ...model('Raspberry Pi 4 Model B Rev 1.4'),
      ...zone(0, 'cpu-thermal', 48686, [['critical', 110000]]),
      'sys/devices/platform/soc/soc:firmware/get_throttled': '0\n',
      'sys/class/hwmon/hwmon0/name': 'rpi_volt\n',
      'sys/class/hwmon/hwmon0/in0_lcrit_alarm': '0\n',
      ...cpufreq(4, 1800000),
    }),
  /** Pi 5 on a 3 A supply: the firmware caps USB current (max_current 3000 mA). */
  pi5ThreeAmp: () =>
    build({
      ...model('Raspberry Pi 5 Model B Rev 1.0'),
      ...zone(0, 'cpu-thermal', 62350, [['critical', 110000]]),
      'proc/device-tree/chosen/power/max_current': be32(3000),
      'sys/devices/platform/soc/soc:firmware/get_throttled': '0\n',
      'sys/class/hwmon/hwmon0/name': 'rpi_volt\n',
      'sys/class/hwmon/hwmon0/in0_lcrit_alarm': '0\n',
      ...cpufreq(4, 2400000),
    }),
  /** Jetson Nano, JetPack 4: PMIC-Die reads a constant 100 °C and must be ignored; INA3221x under iio. */
  jetsonNanoJp4: () =>
    build({
      ...model('NVIDIA Jetson Nano Developer Kit'),
      ...zone(0, 'AO-therm', 39500, [['critical', 101000]]),
      ...zone(1, 'CPU-therm', 44500, [['critical', 101000]]),
      ...zone(2, 'GPU-therm', 42000, [['critical', 101000]]),
      ...zone(3, 'PLL-therm', 40500),
      ...zone(4, 'PMIC-Die', 100000),
      ...zone(5, 'thermal-fan-est', 43200),
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_0': 'POM_5V_IN\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_voltage0_input': '5000\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_current0_input': '888\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input': '4440\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_1': 'POM_5V_GPU\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_voltage1_input': '5000\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_current1_input': '80\n',
      'sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power1_input': '400\n',
      'sys/devices/gpu.0/load': '250\n',
      ...cpufreq(4, 1479000),
    }),
  /** Jetson AGX Orin, JetPack 6: Orin zone names, INA3221 under hwmon (one channel not connected). */
  jetsonOrinJp6: () =>
    build({
      ...model('NVIDIA Jetson AGX Orin Developer Kit'),
      ...zone(0, 'cpu-thermal', 51093, [
        ['passive', 99000],
        ['critical', 104500],
      ]),
      ...zone(1, 'gpu-thermal', 49968, [
        ['passive', 99000],
        ['critical', 104500],
      ]),
      ...zone(2, 'soc0-thermal', 49187),
      ...zone(3, 'soc1-thermal', 48625),
      ...zone(4, 'soc2-thermal', 48875),
      ...zone(5, 'tj-thermal', 52187, [
        ['passive', 99000],
        ['critical', 104500],
      ]),
      // an absent camera/vision-engine sensor: Orin reports it as -256 °C
      ...zone(6, 'cv0-thermal', -256000),
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/name': 'ina3221\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_label': 'VDD_GPU_SOC\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_input': '4976\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input': '1416\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in2_label': 'VDD_CPU_CV\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in2_input': '4984\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr2_input': '400\n',
      'sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in3_label': 'NC\n',
      'sys/devices/platform/17000000.gpu/load': '0\n',
      ...cpufreq(12, 2201600),
    }),
  /** A laptop unplugged: BAT0 discharging at 15 %, AC offline; ACPI and x86 package zones, coretemp. */
  laptopOnBattery: () =>
    build({
      ...zone(0, 'acpitz', 52000, [['critical', 105000]]),
      ...zone(1, 'x86_pkg_temp', 67000),
      'sys/class/hwmon/hwmon2/name': 'coretemp\n',
      'sys/class/hwmon/hwmon2/temp1_label': 'Package id 0\n',
      'sys/class/hwmon/hwmon2/temp1_input': '67000\n',
      'sys/class/hwmon/hwmon2/temp1_crit': '100000\n',
      'sys/class/power_supply/AC/type': 'Mains\n',
      'sys/class/power_supply/AC/online': '0\n',
      'sys/class/power_supply/BAT0/type': 'Battery\n',
      'sys/class/power_supply/BAT0/status': 'Discharging\n',
      'sys/class/power_supply/BAT0/capacity': '15\n',
      'sys/class/power_supply/BAT0/voltage_now': '11350000\n',
      'sys/class/power_supply/BAT0/current_now': '1520000\n',
      ...cpufreq(8, 2800000),
    }),
  /** A plain x86 server VM: cpufreq only, no thermal zones, no hwmon, no supplies. */
  x86Server: () => build({ ...cpufreq(2, 2450000) }),
};

/** A command runner answering like the board's tools do (null: the tool is not installed). */
export function fakeTools(answers: Record<string, string>) {
  return async (cmd: string, args: string[]) => answers[[cmd, ...args].join(' ')] ?? null;
}
