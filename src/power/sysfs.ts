import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childEnv } from '../childEnv.js';

/** Runs a board tool (vcgencmd, nvpmodel); injectable so tests answer from fixtures. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<string | null>;

const exec = promisify(execFile);

/** The real runner: stdout, or null when the tool is missing or fails. */
export const runCommand: CommandRunner = async (cmd, args) => {
  try {
    return (await exec(cmd, args, { timeout: 3000, env: childEnv() })).stdout;
  } catch {
    return null;
  }
};

/** Reads files under a root folder (`/` on a board, a fixture tree in tests). */
export class SysfsTree {
  constructor(readonly root: string) {}

  path(rel: string): string {
    return join(this.root, rel);
  }

  async text(rel: string): Promise<string | null> {
    return (await readFile(this.path(rel), 'utf8').catch(() => null))?.trim() ?? null;
  }

  async bytes(rel: string): Promise<Buffer | null> {
    return readFile(this.path(rel)).catch(() => null);
  }

  /** An integer file (sysfs numbers); null when missing or not a number. */
  async int(rel: string): Promise<number | null> {
    const t = await this.text(rel);
    return t !== null && /^-?\d+$/.test(t) ? Number(t) : null;
  }

  async list(rel: string): Promise<string[]> {
    return (await readdir(this.path(rel)).catch(() => [] as string[])).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }
}
