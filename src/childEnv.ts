/** systemd's per-process variables: meant for this daemon alone (NotifyAccess=all would let a child speak for it). */
const OURS_ONLY = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const;

/**
 * The environment every child process gets (ffmpeg, model builds, probes, tools): this process's, without
 * systemd's notify and watchdog variables, plus `extra`. Only the notify helper is given NOTIFY_SOCKET, by name.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const name of OURS_ONLY) delete env[name];
  return env;
}
