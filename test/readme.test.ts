import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { ROOT, writeTemp } from './helpers/paths.js';

describe('README', () => {
  it('shows a configuration that loads', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /## Configuration[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1];
    const { config } = loadConfig(writeTemp('outpost.yaml', block), {});
    expect(config.cameras[0]).toMatchObject({ name: 'door', maxFps: 1, motion: { masks: [[0.8, 0, 1, 0.1]] } });
    expect(config.power.policy.hot).toMatchObject({ precision: 'int8', maxFps: 1, threads: 1 });
  });
});
