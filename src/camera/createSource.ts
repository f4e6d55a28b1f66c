import type { CameraConfig } from '../config/index.js';
import type { FrameSource } from '../types.js';
import { DemoCamera } from './demoCamera.js';
import { DirectorySource } from './directorySource.js';

export function createSource(camera: CameraConfig): FrameSource {
  const src = camera.source;
  switch (src.type) {
    case 'demo':
      return new DemoCamera(camera.name, src);
    case 'directory':
      return new DirectorySource(camera.name, src);
  }
}
