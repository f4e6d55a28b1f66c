import type { CameraConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { FrameSource } from '../types.js';
import { DemoCamera } from './demoCamera.js';
import { DirectorySource } from './directorySource.js';
import { ffmpegFrames, type SpawnFn } from './ffmpegSource.js';
import { JpegStreamParser } from './jpegStreamParser.js';
import { mjpegHttpFrames } from './mjpegHttpSource.js';
import { ReconnectingSource, type Connect } from './reconnectingSource.js';

export interface SourceDeps {
  log: Logger;
  spawn?: SpawnFn;
  ffmpegBinary?: string;
}

/** The FrameSource for a configured camera; network and device sources reconnect by themselves. */
export function createSource(camera: CameraConfig, deps: SourceDeps): FrameSource {
  const src = camera.source;
  if (src.type === 'demo') return new DemoCamera(camera.name, src);
  if (src.type === 'directory') return new DirectorySource(camera.name, src);
  const parser = new JpegStreamParser();
  const log = deps.log.child({ camera: camera.name });
  const connect: Connect =
    src.type === 'mjpeg-http'
      ? (signal) => mjpegHttpFrames(src, signal, parser)
      : (signal) => ffmpegFrames(src, signal, { log, parser, spawn: deps.spawn, binary: deps.ffmpegBinary });
  return new ReconnectingSource(
    camera.name,
    connect,
    {
      initialBackoffMs: camera.reconnect.initialMs,
      maxBackoffMs: camera.reconnect.maxMs,
      stallMs: camera.stallSeconds * 1000,
      finite: src.type === 'file' && !src.loop,
      log,
    },
    () => parser.truncated,
  );
}
