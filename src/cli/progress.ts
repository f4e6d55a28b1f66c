/** A one-line progress display on stderr, only when it is a terminal (logs and --json stay clean). */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private started = performance.now();

  constructor(private readonly label: string) {}

  update(done: number, total: number, note = ''): void {
    if (!this.tty) return;
    const width = 24;
    const filled = Math.round((done / Math.max(1, total)) * width);
    const secs = ((performance.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${secs}s ${note}`.padEnd(100));
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
