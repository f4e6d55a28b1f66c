import type { CameraConfig, CameraSourceConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { FrameSource } from '../types.js';
import { DemoCamera } from './demoCamera.js';
import { DirectorySource } from './directorySource.js';
import { childFrames, type FrameTool, type SpawnFn } from './childFrames.js';
import { ffmpegTool } from './ffmpegSource.js';
import { gstreamerTool } from './gstreamerSource.js';
import { rpicamTool } from './rpicamSource.js';
import { JpegStreamParser } from './jpegStreamParser.js';
import { mjpegHttpFrames } from './mjpegHttpSource.js';
import { ReconnectingSource, type Connect } from './reconnectingSource.js';

export interface SourceDeps {
  log: Logger;
  spawn?: SpawnFn;
  ffmpegBinary?: string;
}

type SourceType = CameraSourceConfig['type'];
type SourceOf<T extends SourceType> = Extract<CameraSourceConfig, { type: T }>;

/** How one source type connects: a FrameSource of its own, or a connect function that ReconnectingSource keeps alive. */
type SourceFactory<T extends SourceType> =
  | { kind: 'direct'; make(camera: CameraConfig & { source: SourceOf<T> }, deps: SourceDeps): FrameSource }
  | {
      kind: 'connecting';
      connect(src: SourceOf<T>, parser: JpegStreamParser, deps: SourceDeps & { log: Logger }): Connect;
      finite?(src: SourceOf<T>): boolean;
    };

/** A source read from a child process's stdout (ffmpeg, gst-launch-1.0, rpicam-vid), under one supervision. */
const child = <T extends SourceType>(tool: (src: SourceOf<T>, deps: SourceDeps) => FrameTool, finite?: (src: SourceOf<T>) => boolean): SourceFactory<T> => ({
  kind: 'connecting',
  connect: (src, parser, deps) => (signal) => childFrames(tool(src, deps), signal, { log: deps.log, parser, spawn: deps.spawn }),
  finite,
});
const ffmpeg = <T extends 'v4l2' | 'rtsp' | 'file'>(finite?: (src: SourceOf<T>) => boolean) =>
  child<T>((src, deps) => ffmpegTool(src, deps.ffmpegBinary), finite);

const SOURCES: { [T in SourceType]: SourceFactory<T> } = {
  demo: { kind: 'direct', make: (camera) => new DemoCamera(camera.name, camera.source) },
  directory: { kind: 'direct', make: (camera, deps) => new DirectorySource(camera.name, camera.source, deps.log.child({ camera: camera.name })) },
  v4l2: ffmpeg(),
  rtsp: ffmpeg(),
  file: ffmpeg<'file'>((src) => !src.loop),
  'mjpeg-http': { kind: 'connecting', connect: (src, parser) => (signal) => mjpegHttpFrames(src, signal, parser) },
  rpicam: child((src) => rpicamTool(src)),
  gstreamer: child((src) => gstreamerTool(src)),
};

/** The FrameSource for a configured camera; network and device sources reconnect by themselves. */
export function createSource(camera: CameraConfig, deps: SourceDeps): FrameSource {
  const factory = SOURCES[camera.source.type] as SourceFactory<SourceType>;
  if (factory.kind === 'direct') return factory.make(camera, deps);
  const parser = new JpegStreamParser();
  const log = deps.log.child({ camera: camera.name });
  return new ReconnectingSource(
    camera.name,
    factory.connect(camera.source, parser, { ...deps, log }),
    {
      initialBackoffMs: camera.reconnect.initialMs,
      maxBackoffMs: camera.reconnect.maxMs,
      stallMs: camera.stallSeconds * 1000,
      finite: factory.finite?.(camera.source) ?? false,
      log,
    },
    () => parser.truncated,
  );
}
