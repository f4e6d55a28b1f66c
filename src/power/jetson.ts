import type { CommandRunner, SysfsTree } from './sysfs.js';

export interface PowerRail {
  name: string;
  source: string;
  volts: number | null;
  amps: number | null;
  watts: number | null;
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** A rail from the INA3221's readings in mV, mA and mW (null: not readable). */
const rail = (name: string, dir: string, mv: number | null, ma: number | null, mw: number | null): PowerRail => ({
  name,
  source: `/${dir}`,
  volts: mv === null ? null : mv / 1000,
  amps: ma === null ? null : ma / 1000,
  watts: mw === null ? null : round(mw / 1000),
});

/** JetPack 5/6: INA3221 under hwmon, in{N}_label / in{N}_input (mV) / curr{N}_input (mA). */
async function railsHwmon(fs: SysfsTree): Promise<PowerRail[]> {
  const rails: PowerRail[] = [];
  const base = 'sys/bus/i2c/drivers/ina3221';
  for (const dev of (await fs.list(base)).filter((d) => /^\d+-[0-9a-f]{4}$/.test(d))) {
    for (const hw of await fs.list(`${base}/${dev}/hwmon`)) {
      const dir = `${base}/${dev}/hwmon/${hw}`;
      for (const f of (await fs.list(dir)).filter((f) => /^in\d+_label$/.test(f))) {
        const n = f.match(/\d+/)![0];
        const name = await fs.text(`${dir}/${f}`);
        if (!name || name === 'NC') continue;
        const mv = await fs.int(`${dir}/in${n}_input`);
        const ma = await fs.int(`${dir}/curr${n}_input`);
        rails.push(rail(name, dir, mv, ma, mv !== null && ma !== null ? (mv * ma) / 1000 : null));
      }
    }
  }
  return rails;
}

/** JetPack 4: INA3221x under iio, rail_name_{N} / in_voltage{N}_input (mV) / in_current{N}_input (mA) / in_power{N}_input (mW). */
async function railsIio(fs: SysfsTree): Promise<PowerRail[]> {
  const rails: PowerRail[] = [];
  const base = 'sys/bus/i2c/drivers/ina3221x';
  for (const dev of await fs.list(base)) {
    for (const iio of (await fs.list(`${base}/${dev}`)).filter((d) => d.startsWith('iio:device'))) {
      const dir = `${base}/${dev}/${iio}`;
      for (const f of (await fs.list(dir)).filter((f) => /^rail_name_\d+$/.test(f))) {
        const n = f.match(/\d+/)![0];
        const name = await fs.text(`${dir}/${f}`);
        if (!name) continue;
        const mv = await fs.int(`${dir}/in_voltage${n}_input`);
        const ma = await fs.int(`${dir}/in_current${n}_input`);
        const mw = await fs.int(`${dir}/in_power${n}_input`);
        rails.push(rail(name, dir, mv, ma, mw));
      }
    }
  }
  return rails;
}

export async function readJetsonRails(fs: SysfsTree): Promise<PowerRail[]> {
  return [...(await railsHwmon(fs)), ...(await railsIio(fs))];
}

/** `nvpmodel -q`: "NV Power Mode: MAXN" then the mode id. */
export async function readNvpmodel(run: CommandRunner): Promise<{ name: string; id: number | null } | null> {
  const out = await run('nvpmodel', ['-q']);
  const m = out ? /NV Power Mode:\s*(\S+)\s*\n\s*(\d+)?/.exec(out) : null;
  return m ? { name: m[1], id: m[2] !== undefined ? Number(m[2]) : null } : null;
}

/** GPU load in per mille (JetPack 4 gpu.0; Orin's gpu is 17000000.gpu). */
export async function readJetsonGpuLoad(fs: SysfsTree): Promise<number | null> {
  for (const p of ['sys/devices/platform/gpu.0/load', 'sys/devices/platform/17000000.gpu/load', 'sys/devices/gpu.0/load']) {
    const v = await fs.int(p);
    if (v !== null) return v / 10;
  }
  return null;
}
