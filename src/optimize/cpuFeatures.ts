import { readFileSync } from 'node:fs';

/**
 * Whether int8 weights need reduce_range (7 bits): x86 without VNNI multiplies u8×s8 with pmaddubsw, whose
 * int16 sums can saturate. VNNI (avx512_vnni, avx_vnni) and Arm's dot product instructions do not.
 */
export function needsReduceRange(cpuinfo = readCpuinfo(), arch: string = process.arch): boolean {
  if (arch !== 'x64' && arch !== 'ia32') return false;
  return !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(cpuinfo);
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}
