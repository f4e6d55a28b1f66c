import { statfs } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { ffmpegVersion, listVideoDevices } from '../camera/index.js';
import { BoardSensors } from '../power/index.js';
import { AUTO_ORDER, ORT_VERSION, probeProvider, supportedBackends } from '../runtime/index.js';

interface Finding {
  check: string;
  ok: boolean;
  detail: unknown;
  fix?: string;
  /** A missing optional capability narrows what the board can do but is not a fault. */
  optional?: boolean;
}

const PROVIDER_FIX: Record<string, string> = {
  tensorrt: 'install TensorRT 10 and CUDA 12 libraries, then reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci',
  cuda: 'on an x64 box with an NVIDIA GPU and CUDA 12: ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (Jetson needs a custom ORT build)',
  webgpu: 'needs a GPU with Vulkan drivers (libvulkan1 and the vendor ICD)',
  cpu: 'reinstall onnxruntime-node (npm ci)',
};

async function findings(stateDir: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  out.push({ check: 'node', ok: major >= 20, detail: process.version, fix: major >= 20 ? undefined : 'install Node.js 20 or newer' });
  out.push({ check: 'cpu', ok: true, detail: { cores: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', arch: process.arch } });
  out.push({ check: 'onnxruntime', ok: true, detail: { version: ORT_VERSION, compiledIn: supportedBackends() } });
  for (const p of AUTO_ORDER) {
    const a = await probeProvider(p);
    out.push({
      check: `provider ${p}`,
      ok: a.ok,
      detail: a.ok ? `creates a session (${Math.round(a.ms)} ms)` : a.error,
      fix: a.ok ? undefined : PROVIDER_FIX[p],
      optional: p !== 'cpu',
    });
  }
  const ffmpeg = await ffmpegVersion();
  out.push({
    check: 'ffmpeg',
    ok: ffmpeg !== null,
    detail: ffmpeg ?? 'not found',
    fix: ffmpeg ? undefined : 'apt-get install ffmpeg (needed for v4l2, rtsp and file cameras)',
    optional: true,
  });
  const devices = await listVideoDevices();
  out.push({ check: 'video devices', ok: true, detail: devices.length ? devices : 'none (demo and directory cameras still work)' });
  const s = await new BoardSensors({ root: '/', lowBatteryPercent: 20 }).read();
  const temps = s.thermal.map((t) => `${t.name}: ${t.celsius === null ? 'unreadable' : `${t.celsius.toFixed(1)} °C`}`);
  out.push({
    check: 'sensors',
    ok: s.temperature !== null,
    detail: { board: s.board, temperatures: temps, powerState: s.powerState, missing: s.missing },
    fix: s.temperature
      ? undefined
      : 'no board temperature: the governor stays nominal (normal in containers and VMs); `outpost sensors` shows what was looked for',
    optional: true,
  });
  try {
    const fs = await statfs(stateDir);
    const free = fs.bavail * fs.bsize;
    out.push({
      check: 'free disk',
      ok: free > 512 * 1024 ** 2,
      detail: `${(free / 1024 ** 3).toFixed(1)} GiB free at ${stateDir}`,
      fix: free > 512 * 1024 ** 2 ? undefined : 'free space: model variants and the outbox need room',
    });
  } catch {
    out.push({ check: 'free disk', ok: false, detail: `${stateDir} does not exist yet`, fix: `create it (mkdir -p ${stateDir}) or set node.stateDir` });
  }
  return out;
}

/** `outpost doctor`: what this machine offers, and the fix for each problem. */
export async function doctorCommand(opts: { json?: boolean; stateDir: string }): Promise<void> {
  const found = await findings(opts.stateDir);
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ok: found.every((f) => f.ok || f.optional), findings: found }, null, 2) + '\n');
    return;
  }
  for (const f of found) {
    const detail = typeof f.detail === 'string' ? f.detail : JSON.stringify(f.detail);
    process.stdout.write(`${f.ok ? 'ok  ' : f.optional ? 'no  ' : 'FAIL'} ${f.check.padEnd(18)} ${detail}\n${f.fix ? `     fix: ${f.fix}\n` : ''}`);
  }
}
