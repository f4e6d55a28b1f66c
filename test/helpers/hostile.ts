import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

/** A process's resident memory now (VmRSS), in bytes; 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The highest RSS of `pid` seen while `work` runs (sampled every 20 ms). */
export async function rssPeakDuring(pid: number, work: Promise<unknown>): Promise<number> {
  let peak = rssOf(pid);
  let done = false;
  const sampling = (async () => {
    while (!done) {
      peak = Math.max(peak, rssOf(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await work;
  } finally {
    done = true;
    await sampling;
  }
  return Math.max(peak, rssOf(pid));
}

/**
 * Puts `pid` in a memory cgroup capped at `limit` (the unit's MemoryMax): cgroup v1's memory controller, or
 * v2's memory.max. Null (with the reason) where neither is writable here.
 */
export function memoryCgroup(pid: number, limit: string): { release(): void } | string {
  const tries = [
    { root: '/sys/fs/cgroup/memory', limitFile: 'memory.limit_in_bytes' },
    { root: '/sys/fs/cgroup', limitFile: 'memory.max' },
  ];
  const reasons: string[] = [];
  for (const t of tries) {
    const dir = join(t.root, `outpost-hostile-${pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, t.limitFile), limit);
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      return {
        release() {
          try {
            writeFileSync(join(t.root, 'cgroup.procs'), String(pid));
          } catch {
            /* it exited */
          }
          try {
            rmdirSync(dir);
          } catch {
            /* the kernel removes it once empty */
          }
        },
      };
    } catch (err) {
      reasons.push(`${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      try {
        rmdirSync(dir);
      } catch {
        /* never made */
      }
    }
  }
  return reasons.join('; ');
}

/** `head -c SIZE /dev/zero | curl -X POST -T - URL`: the HTTP status curl saw ('000' when the connection was cut first). */
export function curlZeros(url: string, size: string): Promise<string> {
  return new Promise((resolve) => {
    const sh = spawn('sh', ['-c', `head -c ${size} /dev/zero | curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X POST -T - '${url}'`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    sh.stdout.on('data', (c: Buffer) => (out += c.toString()));
    sh.on('close', () => resolve(out.trim()));
  });
}

/** POSTs `prefix` then `zeros` bytes of zeros, streamed: the status, or 'cut' when the server closed first. */
export function postStreamed(url: string, prefix: Buffer, zeros: number, headers: Record<string, string> = {}): Promise<number | 'cut'> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve('cut'));
    const chunk = Buffer.alloc(1 << 16);
    let left = zeros;
    const pump = () => {
      while (left > 0) {
        left -= chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    req.write(prefix);
    pump();
  });
}

/** `n` sockets that each send half a request header and wait; spread over `addresses` local addresses. */
export async function halfHeaderSockets(port: number, n: number, addresses: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) => {
      return new Promise<void>((resolve) => {
        const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % addresses)}` });
        s.on('error', () => resolve());
        s.on('connect', () => (s.write('POST /v1/run HTTP/1.1\r\nHost: x\r\nX-A: '), resolve()));
        sockets.push(s);
      });
    }),
  );
  return sockets;
}

/** How many of `sockets` the server still holds open after `ms`. */
export async function stillOpen(sockets: Socket[], ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  return sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
}

/** A raw HTTP exchange: the status line's code (or 'cut'). */
export function rawRequest(port: number, text: string): Promise<number | 'cut'> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      resolve(m ? Number(m[1]) : 'cut');
    });
    s.write(text);
    setTimeout(() => s.end(), 2000).unref();
  });
}
