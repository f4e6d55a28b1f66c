import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ComponentList, EventBus, type Component } from '../src/core/index.js';
import { configSchema, loadConfig, resolveConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { OutpostError } from '../src/errors.js';
import { freePort } from './helpers/daemonProcess.js';
import { ROOT, tempDir } from './helpers/paths.js';

const silent = pino({ level: 'silent' });

/** A component that records what happened to it; `gate` holds its start() until released. */
function recorder(name: string, journal: string[], opts: { fail?: boolean; gate?: Promise<void> } = {}): Component {
  return {
    name,
    async start() {
      journal.push(`start ${name}`);
      await opts.gate;
      if (opts.fail) throw new OutpostError('OUTPOST_E_CAMERA', `${name} cannot start`);
    },
    async stop() {
      journal.push(`stop ${name}`);
    },
  };
}

describe('ComponentList', () => {
  it('starts in order and stops in reverse, removing each one’s bus listeners', async () => {
    const journal: string[] = [];
    const bus = new EventBus(silent);
    const a = recorder('a', journal);
    const b = { ...recorder('b', journal), start: async () => void bus.on('result', 'b', () => journal.push('b saw a result')) };
    const list = new ComponentList([a, b], bus, silent);
    await list.start(new AbortController().signal);
    await list.stop();
    bus.emit('result', {} as never);
    expect(journal).toEqual(['start a', 'stop b', 'stop a']);
  });

  it('after a failed start, stops what started (the failed one too, to release what it took) and logs the name', async () => {
    const journal: string[] = [];
    const lines: { component?: string; msg: string }[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c, _e, done) => (lines.push(JSON.parse(String(c))), done()) }));
    const list = new ComponentList([recorder('a', journal), recorder('b', journal, { fail: true }), recorder('c', journal)], new EventBus(log), log);
    await expect(list.start(new AbortController().signal)).rejects.toThrow(/b cannot start/);
    await list.stop();
    expect(journal).toEqual(['start a', 'start b', 'stop b', 'stop a']);
    expect(lines).toContainEqual(expect.objectContaining({ component: 'b', msg: 'component failed to start' }));
  });

  it('stop() during an unfinished start() waits for it, stops it and everything before it, and starts nothing after', async () => {
    const journal: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const list = new ComponentList([recorder('a', journal), recorder('b', journal, { gate }), recorder('c', journal)], new EventBus(silent), silent);
    const starting = list.start(new AbortController().signal);
    await new Promise((r) => setTimeout(r, 20));
    const stopping = list.stop();
    release();
    await expect(starting).rejects.toThrow(/cancelled before c/);
    await stopping;
    expect(journal).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });
});

describe('the daemon’s components (in-process, demo config)', () => {
  const demo = (port: number) => {
    const { config } = loadConfig(`${ROOT}/config/outpost.yaml`, {});
    return { file: 'demo.yaml', envOverrides: [], config: { ...config, node: { ...config.node, stateDir: tempDir() }, status: { ...config.status, port } } };
  };

  it('a stop() while the models load leaves no status server and no power monitor running', async () => {
    const port = await freePort();
    const daemon = new Daemon(demo(port), silent);
    const starting = daemon.start(new AbortController().signal).catch((e: unknown) => e);
    // the status server is up (it starts before the engine), the engine is still probing providers
    for (
      let i = 0;
      i < 200 &&
      !(await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => true,
        () => false,
      ));
      i++
    )
      await new Promise((r) => setTimeout(r, 25));
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(503);
    await daemon.stop();
    expect(await starting).toMatchObject({ message: expect.stringMatching(/^start-up cancelled before/) });
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    expect(daemon.list.status()).toEqual({});
  });

  it('refuses a taken status port with the port named, before loading any model', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    const daemon = new Daemon(demo(port), silent);
    try {
      const err = await daemon.start(new AbortController().signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutpostError);
      expect(err).toMatchObject({ code: 'OUTPOST_E_PORT', exitCode: 75 });
      expect((err as Error).message).toMatch(new RegExp(`status.port ${port} on 127.0.0.1 is already in use`));
      expect(daemon.status().provider).toBeNull(); // the engine never started
    } finally {
      await daemon.stop();
      blocker.close();
    }
  });

  it('merges what each component reports into one status', async () => {
    const config = resolveConfig(configSchema.parse({ node: { stateDir: tempDir() } }));
    const list = new ComponentList(
      [
        { name: 'x', start: async () => {}, stop: async () => {}, status: () => ({ cameras: { a: { fps: 2 } } }) },
        { name: 'y', start: async () => {}, stop: async () => {}, status: () => ({ cameras: { a: { source: { state: 'streaming' } } } }) },
      ],
      new EventBus(silent),
      silent,
    );
    await list.start(new AbortController().signal);
    await list.reload(config);
    expect(list.status()).toEqual({ cameras: { a: { fps: 2, source: { state: 'streaming' } } } });
    await list.stop();
  });
});
