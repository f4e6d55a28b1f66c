import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../config/index.js';

/** `outpost schema`: the JSON Schema of the config, for editors (config/outpost.schema.json). */
export function schemaCommand(opts: { write?: string }): void {
  const schema = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Outpost configuration',
    ...(configJsonSchema() as object),
  };
  const text = JSON.stringify(schema, null, 2) + '\n';
  if (opts.write) writeFileSync(opts.write, text);
  else process.stdout.write(text);
}
