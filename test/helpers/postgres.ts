import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists, freePort } from './daemonProcess.js';
import { missing } from './optional.js';
import { tempDir } from './paths.js';

/** Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin (newest first). */
function binDir(): string | null {
  if (commandExists('initdb') && commandExists('pg_ctl')) return '';
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'initdb')));
  return found ? `${found}/` : null;
}

/** True (skip) when PostgreSQL's server binaries are missing locally; in CI they must be there. */
export const missingPostgres = () => missing('PostgreSQL (initdb, pg_ctl)', binDir() !== null, 'apt-get install postgresql (.ci/run does)');

/**
 * A throwaway PostgreSQL: initdb and pg_ctl in a temp folder, on a free loopback port, trust auth for the
 * postgres user. Run as user postgres when we are root (PostgreSQL refuses to run as root). fsync is off:
 * the tests stop the server cleanly or kill collectors, never the machine.
 */
export class Postgres {
  private constructor(
    readonly port: number,
    private readonly data: string,
    private readonly bin: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<Postgres> {
    const bin = binDir();
    if (bin === null) throw new Error('initdb is missing: apt-get install postgresql');
    const dir = tempDir('outpost-pg-');
    if (process.getuid?.() === 0) chownSync(dir, uid('postgres'), gid('postgres'));
    const pg = new Postgres(await freePort(), join(dir, 'data'), bin);
    pg.run('initdb', ['-D', pg.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    pg.up();
    return pg;
  }

  up(): void {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${join(this.data, '..')} -c fsync=off -c max_connections=60`;
    this.run('pg_ctl', ['-D', this.data, '-o', opts, '-l', join(this.data, '..', 'server.log'), '-w', '-t', '30', 'start']);
  }

  down(): void {
    this.run('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
  }

  /** psql is not needed: a query goes through the pg driver the collector uses. */
  private run(cmd: string, args: string[]): void {
    const asPostgres = process.getuid?.() === 0;
    const r = asPostgres
      ? spawnSync('runuser', ['-u', 'postgres', '--', `${this.bin}${cmd}`, ...args], { encoding: 'utf8' })
      : spawnSync(`${this.bin}${cmd}`, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  }
}

function uid(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}
function gid(user: string): number {
  return Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
}
