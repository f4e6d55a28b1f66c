import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableParallelism, cpus } from 'node:os';
import { ffmpegVersion, listVideoDevices } from '../camera/index.js';
import { BoardSensors } from '../power/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { installFindings, type Finding } from './doctorInstall.js';
import { cameraFindings } from './doctorCameras.js';
import { ortBuildFindings, providerFindings } from './doctorOrt.js';
import { nameFinding, reachFindings } from './doctorReach.js';
import { ffmpegFinding, fontsFinding } from './doctorTools.js';

/**
 * The command that fetches onnxruntime-node's CUDA libraries. Its install script is what downloads them; npm 11
 * never runs a dependency's install script during `npm ci` unless allowed, and this project's .npmrc sets
 * ignore-scripts, so the form that runs it on npm 10 and 11 alike is a rebuild of that one package.
 */
export function cudaInstallCommand(npmVersion: string | null): string {
  const form = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node --ignore-scripts=false';
  return npmVersion ? `${form}   # npm ${npmVersion}, in ${packageRoot()}` : `${form}   # in ${packageRoot()}`;
}

const packageRoot = () => fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

function npmVersion(): string | null {
  const r = spawnSync('npm', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function providerFix(provider: string, npm: string | null): string {
  switch (provider) {
    case 'tensorrt':
      return `install TensorRT 10 and CUDA 12 libraries, then: ${cudaInstallCommand(npm)}`;
    case 'cuda':
      return `on an x64 box with an NVIDIA GPU and CUDA 12: ${cudaInstallCommand(npm)} (Jetson needs a custom ORT build)`;
    case 'webgpu':
      return 'needs a GPU with Vulkan drivers (libvulkan1 and the vendor ICD)';
    default:
      return 'reinstall onnxruntime-node (npm ci)';
  }
}

async function findings(root: string, config: ResolvedConfig | null): Promise<Finding[]> {
  const out: Finding[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  out.push({ check: 'node', ok: major >= 20, detail: process.version, fix: major >= 20 ? undefined : 'install Node.js 20 or newer' });
  out.push({ check: 'cpu', ok: true, detail: { cores: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', arch: process.arch } });
  out.push(...ortBuildFindings());
  const npm = npmVersion();
  out.push(...(await providerFindings((p) => providerFix(p, npm))));
  out.push(ffmpegFinding(await ffmpegVersion(), config), fontsFinding(root, config));
  const devices = await listVideoDevices();
  out.push({ check: 'video devices', ok: true, detail: devices.length ? devices : 'none (demo and directory cameras still work)' });
  out.push(...(await cameraFindings(config)));
  const s = await new BoardSensors({ root: '/', lowBatteryPercent: 20 }).read();
  const temps = s.thermal.map((t) => `${t.name}: ${t.celsius === null ? 'unavailable' : `${t.celsius.toFixed(1)} °C`}`);
  out.push({
    check: 'sensors',
    ok: s.temperature !== null,
    detail: { board: s.board, temperatures: temps, powerState: s.powerState, missing: s.missing },
    fix: s.temperature
      ? undefined
      : 'no board temperature: the governor stays nominal (normal in containers and VMs); `outpost sensors` shows what was looked for',
    optional: true,
  });
  return out;
}

export interface DoctorOptions {
  json?: boolean;
  /** `/`, or a DESTDIR holding an installed tree */
  root: string;
  configFile: string;
  config: ResolvedConfig | null;
  configProblem: string | null;
  /** why this config was checked (no installed one) */
  configNote: string | null;
  /** the root the config's own paths live under */
  pathRoot: string;
}

/** `outpost doctor`: what this machine offers, the installed service, and the fix for each problem. Exit 1 on a fault. */
export async function doctorCommand(opts: DoctorOptions): Promise<void> {
  const found = [
    ...(await findings(opts.root, opts.config)),
    ...installFindings(opts.root, opts, opts.pathRoot),
    ...nameFinding(opts.config, opts.configFile),
    ...(await reachFindings(opts.config)),
  ];
  if (!found.every((f) => f.ok || f.optional)) process.exitCode = 1;
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ok: found.every((f) => f.ok || f.optional), findings: found }, null, 2) + '\n');
    return;
  }
  for (const f of found) {
    const detail = typeof f.detail === 'string' ? f.detail : JSON.stringify(f.detail);
    process.stdout.write(`${f.ok ? 'ok  ' : f.optional ? 'no  ' : 'FAIL'} ${f.check.padEnd(18)} ${detail}\n${f.fix ? `     fix: ${f.fix}\n` : ''}`);
  }
}
