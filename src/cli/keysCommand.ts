import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/index.js';
import { generateKeys, publicKeys, readKeys, type PublicKeys } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import { configPath } from './common.js';

/** --dir, else the config's node.keysDir (default <stateDir>/keys). */
function keysDir(opts: { dir?: string; config?: string }): string {
  if (opts.dir) return opts.dir;
  return loadConfig(configPath(opts.config)).config.node.keysDir!;
}

function print(pub: PublicKeys, dir: string, json?: boolean, generated = false): void {
  if (json) return void process.stdout.write(JSON.stringify({ dir, ...pub }, null, 2) + '\n');
  process.stdout.write(
    `${generated ? 'generated ' : ''}keys in ${dir}\n  sign (Ed25519)  ${pub.sign}\n  box  (X25519)   ${pub.box}\n  fingerprint     ${pub.fingerprint}\n`,
  );
  process.stdout.write(`\nfor another node's keyring:\n  - { name: NAME, sign: ${pub.sign}, box: ${pub.box}, roles: [peer] }\n`);
}

/** `outpost keys generate`: an Ed25519 and an X25519 pair, secrets 0600 in a 0700 folder; never overwrites without --force. */
export function keysGenerate(opts: { dir?: string; config?: string; force?: boolean; json?: boolean }): void {
  const dir = keysDir(opts);
  print(generateKeys(dir, opts.force), dir, opts.json, true);
}

/** `outpost keys show`: the public halves and the fingerprint; never a secret. */
export function keysShow(opts: { dir?: string; config?: string; json?: boolean }): void {
  const dir = keysDir(opts);
  if (existsSync(join(dir, 'secret.json'))) return print(publicKeys(readKeys(dir)), dir, opts.json);
  if (existsSync(join(dir, 'public.json'))) return print(JSON.parse(readFileSync(join(dir, 'public.json'), 'utf8')) as PublicKeys, dir, opts.json);
  throw new OutpostError('OUTPOST_E_KEYS', `no keys in ${dir}; run outpost keys generate${opts.dir ? ` --dir ${opts.dir}` : ''}`);
}
