import { loadConfig } from '../config/index.js';
import { configPath } from './common.js';

/** `outpost check-config`: exit 0 when valid, else 78 with one line per problem on stderr. */
export function checkConfigCommand(opts: { config?: string }): void {
  const { file, config, envOverrides } = loadConfig(configPath(opts.config));
  const summary = `${Object.keys(config.models).length} models, ${Object.keys(config.pipelines).length} pipelines, ${config.cameras.length} cameras`;
  process.stdout.write(`${file}: ok (${summary}${envOverrides.length ? `; from env: ${envOverrides.join(', ')}` : ''})\n`);
}
