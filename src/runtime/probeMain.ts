import { PROVIDERS, type ProviderName } from '../vocabulary.js';
import { chooseProvider, probeProvider } from './providerSelection.js';

/**
 * Probes providers in a process of its own, whose stderr the caller swallows: native libraries (Dawn's Vulkan
 * loader, CUDA's loader) print to file descriptor 2 when they fail, and nothing in Node can silence that inside
 * the daemon. Prints one JSON object on stdout.
 */
const req = JSON.parse(process.argv[2] ?? '{}') as { requested: 'auto' | ProviderName[]; deviceId: number; all?: boolean };
const result = req.all
  ? { chosen: null, attempts: await Promise.all(PROVIDERS.map((p) => probeProvider(p, req.deviceId))) }
  : await chooseProvider(req.requested, req.deviceId);
process.stdout.write(JSON.stringify(result) + '\n');
