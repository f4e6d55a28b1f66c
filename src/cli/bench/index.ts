import type { Command } from 'commander';
import { camerasMode } from './cameras.js';
import { chaosMode } from './chaos.js';
import { collectMode } from './collect.js';
import { fleetMode } from './fleet.js';
import { levelsMode } from './levels.js';
import { memoryMode } from './memory.js';
import { modelsMode } from './models.js';
import { offloadMode } from './offload.js';
import { pipelineMode } from './pipeline.js';
import { uploadMode } from './upload.js';

/**
 * The modes of `outpost bench`, one subcommand each with its own options, in the order `--help` lists them. A
 * new mode is a file here exporting `xMode(bench)` (it calls `bench.command('x')` and returns it) and one entry.
 */
const MODES: ((bench: Command) => Command)[] = [
  pipelineMode,
  camerasMode,
  levelsMode,
  modelsMode,
  uploadMode,
  offloadMode,
  fleetMode,
  chaosMode,
  memoryMode,
  collectMode,
];

/** `outpost bench <mode>`: a subcommand per mode; `outpost bench` alone is the pipeline mode. */
export function registerBench(program: Command): void {
  const bench = program
    .command('bench')
    .description('measure this machine: the pipeline against raw ORT (the default mode), and one mode per part of Outpost, each with its own options');
  for (const mode of MODES) mode(bench);
}

/**
 * The flags that chose a mode before modes were subcommands (`bench --chaos`), and what each is now: the mode,
 * and the flag its value moved to (if it took one). Every other flag kept its name.
 */
const LEGACY_MODE_FLAGS: Record<string, { mode: string; valueFlag?: string }> = {
  '--cameras': { mode: 'cameras', valueFlag: '--count' },
  '--levels': { mode: 'levels' },
  '--model-dir': { mode: 'models', valueFlag: '' },
  '--upload': { mode: 'upload' },
  '--offload': { mode: 'offload' },
  '--fleet': { mode: 'fleet', valueFlag: '--devices' },
  '--chaos': { mode: 'chaos' },
  '--memory': { mode: 'memory' },
  '--collect': { mode: 'collect', valueFlag: '' },
};

/** `outpost bench --fleet 100 --interval 5` as `outpost bench fleet --devices 100 --interval 5`, said once on stderr. */
export function legacyBenchArgs(argv: readonly string[]): string[] {
  const rest = argv.slice(3);
  const i = argv[2] === 'bench' ? rest.findIndex((a) => Object.hasOwn(LEGACY_MODE_FLAGS, a.split('=')[0])) : -1;
  if (i < 0) return [...argv];
  const [flag, inline] = rest[i].split(/=(.*)/s);
  const { mode, valueFlag } = LEGACY_MODE_FLAGS[flag];
  let moved: string[] = [];
  if (valueFlag === undefined) rest.splice(i, 1);
  else {
    const value = inline ?? rest[i + 1];
    rest.splice(i, inline === undefined ? 2 : 1);
    moved = value === undefined ? [] : valueFlag ? [valueFlag, value] : [value];
  }
  process.stderr.write(`outpost: \`bench ${flag}\` is now \`bench ${mode}\`; see outpost bench ${mode} --help\n`);
  return [...argv.slice(0, 3), mode, ...moved, ...rest];
}
