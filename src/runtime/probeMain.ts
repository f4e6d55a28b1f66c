import type { ProviderName } from '../vocabulary.js';
import { chooseProvider, type ProbeOptions } from './providerSelection.js';

/**
 * Probes providers in a process of its own, whose stderr the caller swallows: native libraries (Dawn's Vulkan
 * loader, CUDA's loader) print to file descriptor 2 when they fail, and nothing in Node can silence that inside
 * the daemon. Prints one JSON object on stdout.
 */
const req = JSON.parse(process.argv[2] ?? '{}') as { requested: 'auto' | ProviderName[] } & ProbeOptions;
const result = await chooseProvider(req.requested, req);
process.stdout.write(JSON.stringify(result) + '\n');
