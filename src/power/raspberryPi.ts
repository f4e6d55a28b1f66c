import type { CommandRunner, SysfsTree } from './sysfs.js';

export interface ThrottleFlags {
  underVoltage: boolean;
  armFrequencyCapped: boolean;
  throttled: boolean;
  softTemperatureLimit: boolean;
}

export interface ThrottleState {
  raw: number;
  source: string;
  now: ThrottleFlags;
  sinceBoot: ThrottleFlags;
}

const FIRMWARE_FILE = 'sys/devices/platform/soc/soc:firmware/get_throttled';

function flags(word: number, shift: number): ThrottleFlags {
  const bit = (n: number) => ((word >>> (n + shift)) & 1) === 1;
  return { underVoltage: bit(0), armFrequencyCapped: bit(1), throttled: bit(2), softTemperatureLimit: bit(3) };
}

/** Bits 0-3: now; bits 16-19: the same conditions since boot. */
export function decodeThrottled(word: number, source: string): ThrottleState {
  return { raw: word, source, now: flags(word, 0), sinceBoot: flags(word, 16) };
}

/** `vcgencmd get_throttled` (throttled=0x50005) when present, else the firmware's sysfs file (hex without 0x). */
export async function readThrottled(fs: SysfsTree, run: CommandRunner): Promise<ThrottleState | null> {
  const out = await run('vcgencmd', ['get_throttled']);
  const m = out ? /throttled=(0x[0-9a-fA-F]+)/.exec(out) : null;
  if (m) return decodeThrottled(Number(m[1]), 'vcgencmd get_throttled');
  const text = await fs.text(FIRMWARE_FILE);
  if (text && /^(0x)?[0-9a-fA-F]+$/.test(text)) return decodeThrottled(parseInt(text.replace(/^0x/, ''), 16), `/${FIRMWARE_FILE}`);
  return null;
}

/** hwmon `rpi_volt`: in0_lcrit_alarm is 1 while the supply is under-voltage. */
export async function readPiVoltAlarm(fs: SysfsTree): Promise<boolean | null> {
  for (const hw of await fs.list('sys/class/hwmon')) {
    if ((await fs.text(`sys/class/hwmon/${hw}/name`)) === 'rpi_volt') {
      const v = await fs.int(`sys/class/hwmon/${hw}/in0_lcrit_alarm`);
      return v === null ? null : v === 1;
    }
  }
  return null;
}

/** Pi 5: the supply's current limit in mA (big-endian u32; 5000 is a 27 W supply, 3000 caps USB current). */
export async function readPi5MaxCurrent(fs: SysfsTree): Promise<number | null> {
  const b = await fs.bytes('proc/device-tree/chosen/power/max_current');
  return b && b.length >= 4 ? b.readUInt32BE(0) : null;
}

/** The model string the device tree gives (`Raspberry Pi 5 Model B Rev 1.0`, `NVIDIA Jetson Nano Developer Kit`). */
export async function readBoardModel(fs: SysfsTree): Promise<string | null> {
  const b = await fs.bytes('proc/device-tree/model');
  return b ? b.toString('utf8').replace(/\0+$/, '').trim() : null;
}
