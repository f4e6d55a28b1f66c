import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log.js';

/**
 * Sends sd_notify messages to `$NOTIFY_SOCKET`. Node has no unix datagram socket in core, so one long-lived
 * helper process does the sending: perl (perl-base is Essential on Debian, Raspberry Pi OS and Ubuntu/Jetson
 * images) with its core Socket module, reading one message per line on stdin. It lives as long as the daemon,
 * so systemd can always attribute its datagrams to the service (a short-lived `systemd-notify` child may have
 * exited before systemd looks it up: systemd issues 2737, 24516); it needs `NotifyAccess=all`, and it ignores
 * SIGTERM so that STOPPING=1 still goes out when a stop signals the whole group. No native addon to build. Without `$NOTIFY_SOCKET` nothing is sent and nothing is started.
 */
const HELPER = String.raw`
use strict; use Socket;
$SIG{$_} = 'IGNORE' for qw(TERM INT HUP); # it leaves when the daemon closes its stdin, after STOPPING=1
my $path = $ENV{NOTIFY_SOCKET}; $path =~ s/^@/\0/;
socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "outpost-notify: socket: $!\n";
my $to = pack_sockaddr_un($path);
while (my $line = <STDIN>) {
  chomp $line; $line =~ s/\\n/\n/g;
  send($s, $line, 0, $to) or print STDERR "outpost-notify: $path: $!\n";
}`;

export type NotifyFields = Record<string, string | number>;

export class SystemdNotifier {
  private helper: ChildProcess | null = null;
  private failed = false;

  constructor(
    private readonly socket: string | undefined,
    private readonly log: Logger,
  ) {}

  private static shared: SystemdNotifier | null = null;

  /** The process's one notifier (`$NOTIFY_SOCKET` is the process's): the daemon and `outpost run` share it. */
  static forProcess(log: Logger): SystemdNotifier {
    return (SystemdNotifier.shared ??= new SystemdNotifier(process.env.NOTIFY_SOCKET || undefined, log));
  }

  get enabled(): boolean {
    return this.socket !== undefined && !this.failed;
  }

  /** One message: `READY=1`, `WATCHDOG=1`, `STATUS=…` (newlines in values become spaces). */
  send(fields: NotifyFields): void {
    if (!this.enabled) return;
    const line = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]+/g, ' ')}`)
      .join('\\n');
    this.start().stdin?.write(`${line}\n`);
  }

  /** Ends the helper once what was written is sent. */
  close(): Promise<void> {
    const h = this.helper;
    this.helper = null;
    if (!h || h.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => (h.kill(), resolve()), 1000);
      h.once('exit', () => (clearTimeout(t), resolve()));
      h.stdin?.end();
    });
  }

  private start(): ChildProcess {
    if (this.helper) return this.helper;
    const h = spawn('perl', ['-e', HELPER], { stdio: ['pipe', 'ignore', 'inherit'], env: { NOTIFY_SOCKET: this.socket, PATH: process.env.PATH } });
    h.on('error', (err) => {
      this.failed = true;
      this.log.error({ err: err.message, socket: this.socket }, 'cannot notify systemd (perl is missing?): READY and WATCHDOG will not reach it');
    });
    h.stdin?.on('error', () => undefined); // a helper that died is reported by 'error'/'exit'
    h.on('exit', (code) => {
      if (this.helper === h && code !== 0) {
        this.failed = true;
        this.log.error({ code, socket: this.socket }, 'the systemd notify helper exited; READY and WATCHDOG will not reach systemd');
      }
    });
    h.unref();
    (h.stdin as { unref?: () => void } | null)?.unref?.(); // the helper never keeps the daemon alive
    this.helper = h;
    return h;
  }
}
