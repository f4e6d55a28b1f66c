#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { legacyBenchArgs, registerBench } from './cli/bench/index.js';
import { checkConfigCommand } from './cli/checkConfigCommand.js';
import { exitOnError, positiveInt } from './cli/common.js';
import { seconds, withBrokerFlags } from './cli/brokerFlags.js';
import { doctorConfig } from './cli/doctorConfig.js';
import { doctorCommand } from './cli/doctorCommand.js';
import { inferCommand } from './cli/inferCommand.js';
import { runCommand } from './cli/runCommand.js';
import { schemaCommand } from './cli/schemaCommand.js';
import { keysGenerate, keysShow } from './cli/keysCommand.js';
import { commandCommand } from './cli/commandCommand.js';
import { addDeployCommands } from './cli/deployProgram.js';
import { monitorCommand } from './cli/monitorCommand.js';
import { EXPORTER_DEFAULTS, exporterCommand } from './cli/exporter/index.js';
import { collectCommand } from './cli/collectCommand.js';
import { DEFAULT_STORE_LIMITS } from './upload/index.js';
import { sensorsCommand } from './cli/sensorsCommand.js';
import { camerasCommand } from './cli/camerasCommand.js';
import { optimizeCommand } from './cli/optimizeCommand.js';
import { OutpostError } from './errors.js';
import { KEY_ROLES, PRECISIONS, RUNGS } from './vocabulary.js';
import { PLACEMENTS } from './optimize/index.js';
import { VERSION } from './daemon.js';
import { killAllGroups } from './camera/index.js';

const program = new Command('outpost')
  .description('On-device edge AI agent: cameras → ONNX on the best execution provider → results')
  .version(VERSION)
  // commander's own errors (a missing or unknown option, a bad number) end as OUTPOST_E_USAGE below; every
  // subcommand made after this inherits both settings
  .exitOverride()
  .configureOutput({ outputError: () => undefined });

program
  .command('run')
  .description('run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads the config)')
  .option('-c, --config <file>', 'config file (default: $OUTPOST_CONFIG, ./config/outpost.yaml, or the embedded demo)')
  .action((o) => runCommand(o).catch(exitOnError));

program
  .command('check-config')
  .description('validate a config: exit 0 when valid, else 78 with FILE:LINE:COL: path: message lines on stderr')
  .option('-c, --config <file>', 'config file')
  .action((o) => checkConfigCommand(o));

program
  .command('infer')
  .description('run the configured pipeline once per image and print one JSON line per image')
  .option('-c, --config <file>', 'config file')
  .requiredOption('-i, --input <path>', 'an image, or a folder of .jpg/.png images')
  .option('-p, --pipeline <name>', "pipeline to run (default: the first camera's)")
  .addOption(new Option('--precision <rung>', 'run the optimized variants of this rung, where the models have them').choices(RUNGS))
  .option('--json', 'JSON lines on stdout')
  .action((o) => inferCommand(o).catch(exitOnError));

program
  .command('doctor')
  .description('what this machine offers (Node, ORT providers that really work, ffmpeg, fonts, cameras, sensors, disk, broker and collector) and fixes')
  .option('-c, --config <file>', 'config file (default: the installed ROOT/etc/outpost/outpost.yaml, else as for other commands)')
  .option('--root <dir>', 'check the service installed under this folder (a DESTDIR) instead of /', '/')
  .option('--json', 'machine-readable output')
  .action(async (o) => {
    await doctorCommand({ json: o.json, root: o.root, ...doctorConfig(o.root, o.config) }).catch(exitOnError);
  });

registerBench(program);

program
  .command('optimize')
  .description('build fp32 / fp16 / int8-dynamic / int8-static variants of an ONNX model, check each against fp32, write DIR/manifest.json')
  .argument('<model>', 'an fp32 .onnx file')
  .requiredOption('-o, --out <dir>', 'folder for the variants and manifest.json (replaced whole when done; must be empty or an earlier optimize output)')
  .option('--precision <list>', `comma-separated: ${PRECISIONS.join(',')} (default: all but fp16 unless a GPU provider works)`)
  .option('--calibration <dir>', 'frames for int8-static calibration and the fidelity check (default: demo-camera frames)')
  .option('--camera <name>', 'record the calibration frames from this camera of the config instead')
  .option('-c, --config <file>', 'config file for --camera')
  .option('--calibration-frames <n>', 'frames used to calibrate (the next --held-out ones check fidelity)', positiveInt, 32)
  .option('--held-out <n>', 'frames kept out of calibration for the fidelity check (topped up from calibration frames to at least 24)', positiveInt, 24)
  .option('--per-channel', 'int8-dynamic: one weight scale per output column (int8-static is always per channel)')
  .option('--method <m>', 'int8-static calibration: minmax or percentile', 'minmax')
  .option(
    '--placement <list>',
    `int8-static: which float/int8 placements to time, comma-separated (default: all of ${PLACEMENTS.map((p) => p.name).join(', ')})`,
  )
  .option('--normalise <preset>', 'input normalisation: imagenet, imagenet-bgr, half, ultraface, unit', 'imagenet')
  .option('--size <WxH>', 'input size for models with free dimensions', '640x480')
  .option('--min-cosine <v>', 'least cosine similarity to fp32 for a variant to be accepted', Number, 0.99)
  .option('--min-task <v>', 'least task agreement (top-1, detection F1, text) with fp32', Number, 0.95)
  .option('--force', 'replace --out even when it holds files optimize did not write')
  .option('--json', 'print the manifest as JSON')
  .action((model, o) => optimizeCommand(model, o).catch(exitOnError));

program
  .command('sensors')
  .description("what the board's temperature, throttling and power sensors say, with units, and the governor level they imply")
  .option('--root <dir>', "folder that stands for / (a copy of another board's sysfs)")
  .option('--json', 'machine-readable output')
  .action((o) => sensorsCommand(o).catch(exitOnError));

program
  .command('cameras')
  .description('the cameras this board has (rpicam-vid, GStreamer, /dev/video*), the YAML to paste for each, and what was not found')
  .option('--root <dir>', "folder that stands for / when listing /dev/video* (a copy of another board's sysfs)")
  .option('--json', 'machine-readable output')
  .action((o) => camerasCommand(o).catch(exitOnError));

program
  .command('schema')
  .description('print the JSON Schema of the config (or --write it, e.g. to config/outpost.schema.json)')
  .option('-w, --write <file>', 'write to a file instead of stdout')
  .action((o) => schemaCommand(o));

const keys = program.command('keys').description("this node's key pair: Ed25519 to sign, X25519 to seal");
/** What both keys commands take: the folder (or the config naming it), the keyring line's role, JSON. */
const keysOptions = (command: Command, dir: string) =>
  command
    .option('-d, --dir <dir>', dir)
    .option('-c, --config <file>', 'config file (for the default folder)')
    .option('--role <role>', `the role the keyring line gives these keys: ${KEY_ROLES.join(', ')}`, 'peer')
    .option('--json', 'machine-readable output');
keysOptions(
  keys.command('generate').description('make a key pair: secret.json (0600) and public.json in a 0700 folder; refuses to replace keys without --force'),
  'folder for the keys (default: node.keysDir of the config, <stateDir>/keys)',
)
  .option('--force', 'replace existing keys (every keyring that trusts them must be updated)')
  .action((o) =>
    Promise.resolve()
      .then(() => keysGenerate(o))
      .catch(exitOnError),
  );
keysOptions(
  keys.command('show').description('the public keys and fingerprint, never a secret, with the keyring line other nodes need'),
  'folder of the keys (default: node.keysDir of the config)',
).action((o) =>
  Promise.resolve()
    .then(() => keysShow(o))
    .catch(exitOnError),
);

const collect = (v: string, list: string[]) => [...list, v];
withBrokerFlags(
  program
    .command('command')
    .description(
      "sign a command with an operator key, send it to a device over MQTT, print the device's signed answer (exit 0 done, 1 refused, 69 no answer, 78 device not trusted)",
    )
    .argument('<device>', 'the device id (telemetry.mqtt.deviceId, default node.name)')
    .argument('<action>', 'status, reload-config, set-precision, pause-camera, resume-camera, snapshot, rebenchmark, restart')
    .option('-b, --broker <url>', 'mqtt://host:1883, mqtts://, ws:// or wss:// (default: the url of --config)')
    .requiredOption('-k, --key <dir>', "the operator's key folder (outpost keys generate --dir DIR)")
    .requiredOption(
      '--trust <file>',
      "YAML list of device keys: [{ name: DEVICE_ID, sign: BASE64, box: BASE64 }] (outpost keys show); only the device's signed answer counts",
    )
    .option('--base <topic>', 'base topic (default: that of --config, else outpost)')
    .option('-a, --arg <key=value>', 'an argument (repeat it): precision=int8, camera=door', collect, [])
    .option('-t, --timeout <seconds>', 'how long to wait for the answer', seconds, 10)
    .option('-o, --out <file>', 'snapshot: open the sealed JPEG with the operator key and write it here')
    .option('--json', 'the answer as JSON'),
).action((device, action, o) => commandCommand(device, action, o).catch(exitOnError));

withBrokerFlags(
  program
    .command('monitor')
    .description('a live table of every device on the broker: state, age of its telemetry, fps, p95 latency, level, temperature, precision')
    .option('-b, --broker <url>', 'mqtt://host:1883, mqtts://, ws:// or wss:// (default: the url of --config)')
    .option('--base <topic>', 'base topic (default: that of --config, else outpost)')
    .option('--json', 'one JSON object per update instead of the table')
    .option('--for <seconds>', 'stop after this long', seconds)
    .option('--prometheus <host:port>', 'serve the fleet on /metrics instead of the table (outpost exporter with its defaults)'),
).action((o) => (o.prometheus ? exporterCommand({ ...EXPORTER_DEFAULTS, ...o, listen: o.prometheus }) : monitorCommand(o)).catch(exitOnError));

withBrokerFlags(
  program
    .command('exporter')
    .description("the whole fleet in Prometheus: every node's status and telemetry on the broker, served on /metrics")
    .option('-b, --broker <url>', 'mqtt://host:1883, mqtts://, ws:// or wss:// (default: the url of --config)')
    .option('--base <topic>', 'base topic (default: that of --config, else outpost)')
    .option('-l, --listen <host:port>', 'where Prometheus scrapes GET /metrics', EXPORTER_DEFAULTS.listen)
    .option('--label <name>', "a node label (node.labels) to put on every device's series; repeat it", collect, [])
    .option('--max-devices <n>', 'devices tracked at most; messages of more are counted and ignored', positiveInt, EXPORTER_DEFAULTS.maxDevices)
    .option('--forget-after <seconds>', 'a device quiet this long is forgotten (its series end)', seconds, EXPORTER_DEFAULTS.forgetAfter)
    .option('--for <seconds>', 'stop after this long', seconds),
).action((o) => exporterCommand(o).catch(exitOnError));

withBrokerFlags(
  program
    .command('collect')
    .description(
      'receive sealed items from trusted devices and store each once in OUT/<device>/<epoch>/<seq>.json (+ .jpg) or in PostgreSQL (--store); or --verify',
    )
    .option('-l, --listen <host:port>', 'where to listen for POST /v1/items', '0.0.0.0:8789')
    .option('-k, --keys <dir>', "the collector's key folder (outpost keys generate --dir DIR)")
    .option('-t, --trust <file>', 'YAML list of trusted devices: [{ name: DEVICE_ID, sign: BASE64 }] (their Ed25519 keys)')
    .option('-o, --out <dir>', 'folder of the stored items (several collectors may share it)')
    .option('--store <url>', 'postgres://user@host/db: store the items in PostgreSQL instead of --out (several collectors may share it)')
    .option('--migrate', 'with --store: create or migrate the schema, then exit (collect does it on start too)')
    .option('--mqtt [url]', 'also take items published to <base>/<device>/upload on this broker (no url: that of --config)')
    .option('--share <group>', 'with --mqtt: a shared subscription ($share/GROUP/...): the collectors of a group split the batches')
    .option('--base <topic>', 'base topic for --mqtt (default: that of --config, else outpost)')
    .option('--seq-window <n>', 'refuse a seq more than this past the highest stored for its device and epoch', positiveInt, DEFAULT_STORE_LIMITS.seqWindow)
    .option(
      '--quota-bytes <n>',
      'bytes each device may hold in OUT; past it its items are refused (it keeps them)',
      positiveInt,
      DEFAULT_STORE_LIMITS.quotaBytes,
    )
    .option('--quota-items <n>', 'items each device may hold in OUT', positiveInt, DEFAULT_STORE_LIMITS.quotaItems)
    .option(
      '--verify',
      'check OUT (or --store) instead: per device and epoch what is stored, dropped, missing, in conflict (exit 1 on a gap or conflict, 66 when OUT does not exist)',
    )
    .option('--json', 'with --verify: JSON'),
).action((o) => collectCommand(o).catch(exitOnError));

addDeployCommands(program);

/** `outpost bench fleet`: the command that `args` name, as far as they name one. */
function commandNamed(args: readonly string[]): string {
  const names = ['outpost'];
  let cmd: Command = program;
  for (const arg of args) {
    const sub = cmd.commands.find((c) => c.name() === arg);
    if (!sub) break;
    names.push(arg);
    cmd = sub;
  }
  return names.join(' ');
}

/** A commander error as the catalogue says it: one line, exit 64 (help and --version end with 0). */
function usageError(err: CommanderError, args: readonly string[]): never {
  if (err.exitCode === 0) process.exit(0);
  const help = `${commandNamed(args)} --help`;
  const message = err.message
    .replace(/^error: /, '')
    .replace('is invalid. ', 'is invalid: ')
    .replace(/\.$/, '');
  exitOnError(new OutpostError('OUTPOST_E_USAGE', err.code === 'commander.help' ? `a command is needed; see ${help}` : `${message}; see ${help}`));
}

// `outpost monitor | head -1`: the reader went away, which ends the command, not an error
process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : exitOnError(err)));

// whichever way a command ends (a clean stop, a stop that took too long, a crash), no camera process outlives it
process.on('exit', killAllGroups);

const argv = legacyBenchArgs(process.argv);
program.parseAsync(argv).catch((err: unknown) => (err instanceof CommanderError ? usageError(err, argv.slice(2)) : exitOnError(err)));
