import type { CameraConfig, CameraSourceConfig } from '../config/index.js';
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

const ffmpeg = <T extends 'v4l2' | 'rtsp' | 'file'>(finite?: (src: SourceOf<T>) => boolean): SourceFactory<T> => ({
  kind: 'connecting',
  connect: (src, parser, deps) => (signal) => ffmpegFrames(src, signal, { log: deps.log, parser, spawn: deps.spawn, binary: deps.ffmpegBinary }),
  finite,
});

const SOURCES: { [T in SourceType]: SourceFactory<T> } = {
  demo: { kind: 'direct', make: (camera) => new DemoCamera(camera.name, camera.source) },
  directory: { kind: 'direct', make: (camera, deps) => new DirectorySource(camera.name, camera.source, deps.log.child({ camera: camera.name })) },
  v4l2: ffmpeg(),
  rtsp: ffmpeg(),
  file: ffmpeg<'file'>((src) => !src.loop),
  'mjpeg-http': { kind: 'connecting', connect: (src, parser) => (signal) => mjpegHttpFrames(src, signal, parser) },
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
