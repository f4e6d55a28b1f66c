import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { childEnv } from '../childEnv.js';
import type { Logger } from '../log.js';
import type { JpegStreamParser } from './jpegStreamParser.js';
import { stopGroup, trackGroup } from './processGroups.js';
import { logRejection } from '../lastResort.js';

export type SpawnFn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

/** Picks the line of a tool's stderr that explains its exit; a fresh one per run (it may keep state between lines). */
export interface CauseReader {
  /** One whole, trimmed, non-empty stderr line. */
  line(text: string): void;
  /** What to report when the tool exits on its own: '' when nothing was worth keeping. */
  cause(): string;
}

/** A child process that writes concatenated JPEGs on stdout: ffmpeg, gst-launch-1.0, rpicam-vid. */
export interface FrameTool {
  /** The name used in messages and logs. */
  tool: string;
  command: string;
  args: string[];
  /** What to do when the command cannot be started (ENOENT): "install it (apt-get install ffmpeg)". */
  install: string;
  causes: () => CauseReader;
}

export interface ChildFramesDeps {
  log: Logger;
  parser: JpegStreamParser;
  spawn?: SpawnFn;
}

/** Cuts stderr into whole lines: tools write a line in several writes, and half a line read alone misleads. */
function lineSplitter(onLine: (line: string) => void): (text: string) => void {
  let partial = '';
  return (text) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!.slice(-4096); // bounded: a line that never ends is not a cause either
    for (const line of lines.map((l) => l.trim()).filter(Boolean)) onLine(line);
  };
}

/**
 * Runs one frame tool for as long as the signal allows and yields its JPEG frames. The tool runs in its own
 * process group; on abort the group is stopped with escalation (a hung or SIGSTOPped child is SIGKILLed after
 * two seconds), so the frame loop always ends and no child or grandchild is left behind. The tool's own error
 * line (its CauseReader picks it) explains an exit; every stderr line goes to the debug log.
 */
export async function* childFrames(spec: FrameTool, signal: AbortSignal, deps: ChildFramesDeps): AsyncIterable<Buffer> {
  const child = (deps.spawn ?? spawn)(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: childEnv() });
  trackGroup(child);
  const exited = once(child, 'exit').catch(() => undefined);
  const causes = spec.causes();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on(
    'data',
    lineSplitter((line) => {
      causes.line(line);
      deps.log.debug({ [spec.tool]: line }, spec.tool);
    }),
  );
  let spawnError: NodeJS.ErrnoException | null = null;
  child.once('error', (err) => {
    spawnError = err;
    child.stdout!.destroy();
  });
  const kill = () => {
    stopGroup(child).catch(logRejection(deps.log, `stopping ${spec.tool}`));
  };
  signal.addEventListener('abort', kill, { once: true });
  try {
    try {
      for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
        for (const frame of deps.parser.push(chunk)) yield frame;
      }
    } catch (err) {
      if (!spawnError) throw err; // else stdout was destroyed because the tool never started: say that instead
    }
    if (spawnError) throw new Error(`cannot start ${spec.command} (${(spawnError as NodeJS.ErrnoException).code ?? spawnError}); ${spec.install}`);
    await exited;
    if (!signal.aborted && child.exitCode !== 0) {
      const how = child.exitCode ?? child.signalCode;
      const cause = causes.cause();
      throw new Error(`${spec.tool} exited with ${how}: ${cause || (child.signalCode ? 'killed by a signal from outside Outpost' : 'no message')}`);
    }
  } finally {
    signal.removeEventListener('abort', kill);
    await stopGroup(child);
  }
}
