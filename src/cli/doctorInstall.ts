import { accessSync, constants, existsSync, lstatSync, readdirSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { OutpostConfig } from '../config/index.js';
import { underRoot } from './doctorConfig.js';

export interface Finding {
  check: string;
  ok: boolean;
  detail: unknown;
  fix?: string;
  /** A missing optional capability narrows what the board can do but is not a fault. */
  optional?: boolean;
}

const USER = 'outpost';
const UNIT = 'outpost.service';

/** A line of /etc/passwd or /etc/group under `root`, split. */
function entries(root: string, file: 'passwd' | 'group'): string[][] {
  try {
    return readFileSync(join(root, 'etc', file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

/**
 * The installed service, as scripts/install.sh leaves it: the unit and whether it is enabled, the `outpost`
 * user and its `video` group, camera devices it can open, the node's keys' modes, the config, the state folder
 * and room for the outbox. `root` is `/`, or a DESTDIR to check a package's tree; the config's own paths are
 * under `pathRoot`.
 */
export function installFindings(
  root: string,
  checked: { config: OutpostConfig | null; configProblem: string | null; configFile: string; configNote: string | null },
  pathRoot = root,
): Finding[] {
  const { config, configProblem, configFile, configNote: note } = checked;
  const out: Finding[] = [];
  out.push({
    check: 'config',
    ok: config !== null,
    detail: `${config ? `${configFile}: valid` : configProblem}${note ? ` (${note})` : ''}`,
    fix: config ? undefined : `fix ${configFile} (outpost check-config --config ${configFile})`,
  });
  const unit = ['etc/systemd/system', 'lib/systemd/system', 'usr/lib/systemd/system'].map((d) => join(root, d, UNIT)).find((f) => existsSync(f));
  const installed = unit !== undefined;
  out.push({
    check: 'service unit',
    ok: installed,
    detail: unit ?? 'not installed',
    fix: installed ? undefined : 'sudo scripts/install.sh (installs and enables the unit)',
    optional: !installed,
  });
  if (installed) {
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants', UNIT);
    const enabled = existsSync(wants) || (lstatSync(wants, { throwIfNoEntry: false })?.isSymbolicLink() ?? false);
    out.push({
      check: 'service enabled',
      ok: enabled,
      detail: enabled ? 'starts at boot' : 'not enabled',
      fix: enabled ? undefined : 'sudo systemctl enable --now outpost',
    });
    out.push(userFinding(root));
  }
  out.push(...cameraFindings(root, config));
  if (config) out.push(keysFinding(pathRoot, config), ...stateFindings(pathRoot, config));
  return out;
}

function userFinding(root: string): Finding {
  const user = entries(root, 'passwd').find((e) => e[0] === USER);
  if (!user)
    return {
      check: 'service user',
      ok: false,
      detail: `no user ${USER}`,
      fix: `useradd --system --user-group --shell /usr/sbin/nologin ${USER} (scripts/install.sh does)`,
    };
  const video = entries(root, 'group').find((e) => e[0] === 'video');
  const inVideo = !!video && (video[2] === user[3] || (video[3] ?? '').split(',').includes(USER));
  return {
    check: 'service user',
    ok: inVideo,
    detail: inVideo ? `${USER} is in video` : `${USER} is not in video: cameras cannot be opened`,
    fix: inVideo ? undefined : `usermod -aG video ${USER}`,
  };
}

/** Each /dev/video* (and every configured v4l2 device): the video group may read and write it. */
function cameraFindings(root: string, config: OutpostConfig | null): Finding[] {
  const dev = join(root, 'dev');
  const found = existsSync(dev) ? readdirSync(dev).filter((n) => /^video\d+$/.test(n)) : [];
  const configured = (config?.cameras ?? []).flatMap((c) => (c.source.type === 'v4l2' ? [c.source.device.replace(/^\/dev\//, '')] : []));
  const videoGid = entries(root, 'group').find((e) => e[0] === 'video')?.[2];
  return [...new Set([...configured, ...found])].map((name) => {
    const path = join(dev, name);
    if (!existsSync(path))
      return { check: `camera /dev/${name}`, ok: false, detail: 'configured but absent', fix: 'plug the camera in, or fix cameras[].source.device' };
    const st = statSync(path);
    const ok = String(st.gid) === videoGid && (st.mode & 0o060) === 0o060;
    return {
      check: `camera /dev/${name}`,
      ok,
      detail: `${octal(st.mode & 0o777)} gid ${st.gid}`,
      fix: ok ? undefined : `the video group needs rw on /dev/${name} (udev: GROUP="video", MODE="0660")`,
    };
  });
}

function keysFinding(root: string, config: OutpostConfig): Finding {
  const dir = underRoot(root, config.node.keysDir ?? join(config.node.stateDir, 'keys'));
  const secret = join(dir, 'secret.json');
  const needed = Boolean(config.telemetry.mqtt || config.upload || config.offload);
  // a board's identity is made on the board (the daemon at first start), never shipped in a package
  if (!existsSync(secret))
    return {
      check: 'keys',
      ok: true,
      detail: `no keys in ${dir} yet: ${needed ? 'the daemon creates them at first start' : 'needed only for the fleet, uploads and offload'}`,
    };
  const bad = [mode(dir) !== 0o700 ? `${dir} is ${octal(mode(dir))}` : null, mode(secret) !== 0o600 ? `secret.json is ${octal(mode(secret))}` : null].filter(
    Boolean,
  );
  return {
    check: 'keys',
    ok: bad.length === 0,
    detail: bad.length ? bad.join('; ') : `${dir}: 0700, secret 0600`,
    fix: bad.length ? `chmod 0700 ${dir} && chmod 0600 ${secret}` : undefined,
  };
}

/** The nearest folder of `path` that exists (the daemon creates the rest). */
function existing(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

function stateFindings(root: string, config: OutpostConfig): Finding[] {
  const dir = underRoot(root, config.node.stateDir);
  const at = existing(dir);
  let writable = false;
  try {
    accessSync(at, constants.W_OK);
    writable = true;
  } catch {
    /* reported below */
  }
  const detail = `${dir} ${at === dir ? '' : `(to be created in ${at}) `}${writable ? 'writable' : 'not writable'}`;
  const fs = statfsSync(at);
  const free = fs.bavail * fs.bsize;
  const want = Math.max(512 * 1024 ** 2, config.upload?.outbox.maxBytes ?? 0);
  return [
    { check: 'state folder', ok: writable, detail, fix: writable ? undefined : `mkdir -p ${dir} && chown ${USER}: ${dir}, or set node.stateDir` },
    {
      check: 'free disk',
      ok: free >= want,
      detail: `${(free / 1024 ** 2).toFixed(0)} MiB free at ${at}; wanted ${(want / 1024 ** 2).toFixed(0)} MiB (model variants${config.upload ? ', upload.outbox.maxBytes' : ''})`,
      fix: free >= want ? undefined : 'free space, or lower upload.outbox.maxBytes: a full disk stops the outbox before its own bound',
    },
  ];
}
