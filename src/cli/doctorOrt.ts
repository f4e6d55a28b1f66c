import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindingDir, ORT_PACKAGE, ORT_VERSION, ortLibraries, probeQuietly, supportedBackends, type ProviderAttempt } from '../runtime/index.js';
import type { Finding } from './doctorInstall.js';

/** The ORT release a shared library was built from: its symbol version (VERS_1.30.0) or a bare "1.30.0" string. */
export function libraryVersion(file: string): string | null {
  const text = readFileSync(file).toString('latin1');
  const versioned = /VERS_(1\.\d{1,2}\.\d{1,2})\0/.exec(text);
  if (versioned) return versioned[1];
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/\0(1\.[1-9]\d\.\d{1,2})\0/g)) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

/**
 * The ORT build in use: its package and version, the providers compiled in, and the provider libraries beside
 * the core. A provider library from another ORT release than the core fails in odd ways (or crashes), so a
 * mismatch is a fault with its fix.
 */
export function ortBuildFindings(dir = bindingDir()): Finding[] {
  const libs = ortLibraries(dir);
  const core = libs.core ? libraryVersion(join(dir, libs.core)) : null;
  const out: Finding[] = [
    {
      check: 'onnxruntime',
      ok: true,
      detail: { version: ORT_VERSION, core, package: ORT_PACKAGE, binding: dir, compiledIn: supportedBackends(), providerLibraries: libs.providers },
    },
  ];
  if (core && core !== ORT_VERSION)
    out.push({
      check: 'onnxruntime core',
      ok: false,
      detail: `${libs.core} is ORT ${core}, the JavaScript package is ${ORT_VERSION}`,
      fix: 'install the core library and the package from the same ORT build (docs/accelerators.md)',
    });
  for (const lib of libs.providers) {
    const version = libraryVersion(join(dir, lib));
    if (version && core && version !== core)
      out.push({
        check: `library ${lib.replace(/^libonnxruntime_providers_|\.so.*$/g, '')}`,
        ok: false,
        detail: `${lib} is from ORT ${version}, the core library from ${core}`,
        fix: `replace ${join(dir, lib)} with the one from ORT ${core}'s build (or remove it)`,
      });
  }
  return out;
}

function describe(a: ProviderAttempt): string {
  if (!a.ok) return a.error ?? 'fails';
  const p = a.placement;
  const nodes = p
    ? `; ${p.onProvider} of ${p.nodes} probe nodes on ${a.provider}${Object.keys(p.cpuOps).length ? `, on CPU: ${JSON.stringify(p.cpuOps)}` : ''}`
    : '';
  return `creates and runs a session (${Math.round(a.ms)} ms)${nodes}`;
}

/** Every provider this build has, proven by a session; the ones it lacks in one line. */
export async function providerFindings(fixFor: (provider: string) => string): Promise<Finding[]> {
  const attempts = (await probeQuietly('auto')).attempts;
  const out: Finding[] = attempts
    .filter((a) => a.compiledIn)
    .map((a) => ({
      check: `provider ${a.provider}`,
      ok: a.ok,
      detail: describe(a),
      fix: a.ok ? undefined : fixFor(a.provider),
      optional: a.provider !== 'cpu',
    }));
  const absent = attempts.filter((a) => !a.compiledIn).map((a) => a.provider);
  if (absent.length)
    out.push({
      check: 'other providers',
      ok: false,
      detail: `not in this build: ${absent.join(', ')}`,
      fix: 'a custom onnxruntime-node build, named by OUTPOST_ONNXRUNTIME (docs/accelerators.md)',
      optional: true,
    });
  return out;
}
