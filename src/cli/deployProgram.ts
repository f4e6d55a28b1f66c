import type { Command } from 'commander';
import { exitOnError } from './common.js';
import { seconds, withBrokerFlags } from './brokerFlags.js';
import { deployCreate, deployDecide, deployStatus, duration, percent } from './deployCommand.js';

/** The flags every `outpost deploy` subcommand shares: the broker, the operator key, the devices' keys. */
function operatorFlags(cmd: Command): Command {
  return withBrokerFlags(
    cmd
      .option('-b, --broker <url>', 'mqtt://host:1883, mqtts://, ws:// or wss:// (default: the url of --config)')
      .option('--base <topic>', 'base topic (default: that of --config, else outpost)')
      .requiredOption('-k, --key <dir>', "the operator's key folder (outpost keys generate --dir DIR)")
      .requiredOption('--trust <file>', 'YAML list of device keys [{ name, sign, box }] (outpost keys show): only reports they sign count')
      .option('--json', 'JSON instead of the table'),
  );
}

/** `outpost deploy create|status|confirm|rollback` (docs/deployments.md). */
export function addDeployCommands(program: Command): void {
  const deploy = program
    .command('deploy')
    .description('signed, staged rollouts of config to the fleet, with a confirm window and rollback (docs/deployments.md)');
  operatorFlags(
    deploy
      .command('create')
      .description(
        'sign a deployment for each target and publish it: canaries first, the rest when every canary confirmed; the first failure stops it (exit 1)',
      )
      .argument('<file>', 'deployment YAML: { id?, config: { patch: {…} } | { file: PATH }, gates?: {…} }')
      .requiredOption('--to <selector>', 'device ids (cam-01,cam-02) or labels (site=north,camera=door)')
      .option('--canary <percent>', 'share of the targets that goes first (34%)', percent)
      .option('--confirm <duration>', 'confirm window (90s, 10m, 1h)', duration)
      .option('--require-confirm', 'roll back unless outpost deploy confirm comes within the window')
      .option('-t, --timeout <seconds>', 'how long past the confirm window to wait for each stage', seconds, 60),
  ).action((file, o) => deployCreate(file, o).catch(exitOnError));
  operatorFlags(
    deploy
      .command('status')
      .description('the fleet table of a deployment: device, step, result, reason, time (each row signed by its device)')
      .argument('<id>', 'the deployment id')
      .option('-w, --watch', 'print the table again on every change')
      .option('-t, --timeout <seconds>', 'with --watch: for how long', seconds, 600),
  ).action((id, o) => deployStatus(id, o).catch(exitOnError));
  for (const action of ['confirm', 'rollback'] as const)
    operatorFlags(
      deploy
        .command(action)
        .description(action === 'confirm' ? 'confirm a deployment in its confirm window' : 'roll a deployment back to the config before it')
        .argument('<id>', 'the deployment id')
        .option('--to <devices>', 'only these devices (default: every device that reports the deployment)')
        .option('-t, --timeout <seconds>', 'how long to wait for the reports', seconds, 30),
    ).action((id, o) => deployDecide(action, id, o).catch(exitOnError));
}
