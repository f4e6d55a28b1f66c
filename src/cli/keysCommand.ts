import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/index.js';
import { generateKeys, publicKeys, readKeys, type PublicKeys } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import { KEY_ROLES, type KeyRole } from '../vocabulary.js';
import { configPath, keysFolder } from './common.js';

/** --dir, else the config's node.keysDir (default <stateDir>/keys). */
function keysDir(opts: { dir?: string; config?: string }): string {
  if (opts.dir) return opts.dir;
  return loadConfig(configPath(opts.config)).config.node.keysDir;
}

/** The keyring line other nodes add for these keys in this role. */
function keyringLine(pub: PublicKeys, role: KeyRole): string {
  return `- { name: NAME, sign: ${pub.sign}, box: ${pub.box}, roles: [${role}] }`;
}

function print(pub: PublicKeys, dir: string, role: KeyRole, json?: boolean, generated = false): void {
  if (json) return void process.stdout.write(JSON.stringify({ dir, ...pub, keyring: keyringLine(pub, role).slice(2) }, null, 2) + '\n');
  process.stdout.write(
    `${generated ? 'generated ' : ''}keys in ${dir}\n  sign (Ed25519)  ${pub.sign}\n  box  (X25519)   ${pub.box}\n  fingerprint     ${pub.fingerprint}\n`,
  );
  process.stdout.write(`\nfor another node's keyring (role ${role}):\n  ${keyringLine(pub, role)}\n`);
}

/** --role, checked against the keyring's roles (peer unless said). */
function keyRole(role: string | undefined): KeyRole {
  if (role === undefined) return 'peer';
  if ((KEY_ROLES as readonly string[]).includes(role)) return role as KeyRole;
  throw new OutpostError('OUTPOST_E_USAGE', `--role ${role}: expected one of ${KEY_ROLES.join(', ')}`);
}

/** `outpost keys generate`: an Ed25519 and an X25519 pair, secrets 0600 in a 0700 folder; never overwrites without --force. */
export function keysGenerate(opts: { dir?: string; config?: string; force?: boolean; json?: boolean; role?: string }): void {
  const role = keyRole(opts.role);
  const dir = keysDir(opts);
  print(generateKeys(dir, opts.force), dir, role, opts.json, true);
}

/** `outpost keys show`: the public halves and the fingerprint; never a secret. */
export function keysShow(opts: { dir?: string; config?: string; json?: boolean; role?: string }): void {
  const role = keyRole(opts.role);
  const dir = opts.dir ? keysFolder(opts.dir, '--dir') : keysDir(opts);
  if (existsSync(join(dir, 'secret.json'))) return print(publicKeys(readKeys(dir)), dir, role, opts.json);
  if (existsSync(join(dir, 'public.json'))) return print(JSON.parse(readFileSync(join(dir, 'public.json'), 'utf8')) as PublicKeys, dir, role, opts.json);
  throw new OutpostError('OUTPOST_E_KEYS', `no keys in ${dir}; run outpost keys generate${opts.dir ? ` --dir ${opts.dir}` : ''}`);
}
