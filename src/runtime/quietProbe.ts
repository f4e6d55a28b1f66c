import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ProviderName } from '../vocabulary.js';
import { chooseProvider, type ProbeOptions, type ProviderAttempt } from './providerSelection.js';
import { childEnv } from '../childEnv.js';

export interface ProbeResult {
  chosen: ProviderName | null;
  attempts: ProviderAttempt[];
}

/** Under vitest the sources are .ts files; the probe always runs the compiled JavaScript. */
function probeScript(): string | null {
  const here = fileURLToPath(new URL('./probeMain.js', import.meta.url));
  const compiled = here.replace(/([\\/])src([\\/]runtime[\\/])/, '$1dist$2');
  return [here, compiled].find((f) => existsSync(f)) ?? null;
}

/**
 * Probes the requested providers (`auto`: every one ORT knows) in a child process and keeps its stderr out of
 * the daemon's: a CPU-only board would otherwise print Vulkan and CUDA loader noise on every start. The result
 * says which provider works, where each one's nodes run, and why each other one does not; the caller reports it.
 */
export function probeQuietly(requested: 'auto' | readonly ProviderName[], opts: ProbeOptions = { deviceId: 0 }): Promise<ProbeResult> {
  const onlyCpu = requested !== 'auto' && requested.every((p) => p === 'cpu');
  const script = probeScript();
  if (onlyCpu || !script) return chooseProvider(requested, opts);
  return new Promise((resolve) => {
    execFile(process.execPath, [script, JSON.stringify({ requested, ...opts })], { timeout: 120_000, maxBuffer: 1 << 20, env: childEnv() }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        if (err) throw err;
        resolve(JSON.parse(line) as ProbeResult);
      } catch {
        // a probe that crashed the child (a broken GPU driver can) must not cost the board its CPU provider
        resolve(chooseProvider(requested === 'auto' ? ['cpu'] : requested, opts));
      }
    });
  });
}
