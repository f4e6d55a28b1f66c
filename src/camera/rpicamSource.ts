import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { CameraSourceConfig } from '../config/index.js';
import type { CauseReader, FrameTool } from './childFrames.js';

type RpicamSource = Extract<CameraSourceConfig, { type: 'rpicam' }>;

/** rpicam-apps' video tool under its name since Bookworm, then the name older images (Bullseye) gave it. */
export const RPICAM_BINARIES = ['rpicam-vid', 'libcamera-vid'] as const;

export const RPICAM_INSTALL = 'install rpicam-apps (sudo apt install rpicam-apps; Raspberry Pi OS Lite needs rpicam-apps-lite)';

/** The first of `names` that is an executable file in one of PATH's folders. */
export function findOnPath(names: readonly string[], path = process.env.PATH ?? ''): string | null {
  for (const name of names)
    for (const dir of path.split(':').filter(Boolean)) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return name;
      } catch {
        /* not in this folder */
      }
    }
  return null;
}

/**
 * rpicam-vid arguments for an endless MJPEG stream on stdout with no preview window (flags from rpicam-apps'
 * core/options.hpp and core/video_options.hpp). `--flush` writes each frame out as soon as it is encoded.
 */
export function rpicamArgs(src: RpicamSource): string[] {
  const opt = (flag: string, value: string | number | undefined) => (value === undefined ? [] : [flag, String(value)]);
  return [
    ...['--codec', 'mjpeg', '-o', '-', '-t', '0', '-n', '--flush'],
    ...opt('--camera', src.camera),
    ...opt('--width', src.width),
    ...opt('--height', src.height),
    ...opt('--framerate', src.fps),
    ...opt('--quality', src.quality),
    ...(src.rotation ? opt('--rotation', src.rotation) : []),
    ...(src.hflip ? ['--hflip'] : []),
    ...(src.vflip ? ['--vflip'] : []),
    ...opt('--shutter', src.shutterUs),
    ...opt('--gain', src.gain),
    ...opt('--awb', src.awb),
    ...opt('--autofocus-mode', src.autofocus),
    ...opt('--lens-position', src.lensPosition),
    ...src.args,
  ];
}

/**
 * rpicam-apps report a fatal error as `ERROR: *** message ***` (their main()'s catch); libcamera's own log
 * lines carry ` ERROR ` after a timestamp. The first form wins, then the last libcamera error, then the last line.
 */
function rpicamCauses(): CauseReader {
  let fatal = '';
  let logged = '';
  let last = '';
  return {
    line(text) {
      const m = /^ERROR: \*\*\* (.*) \*\*\*$/.exec(text);
      if (m) fatal = m[1];
      else if (/\sERROR\s/.test(text)) logged = text.replace(/^\[[^\]]*\]\s*\[\d+\]\s*/, '');
      last = text;
    },
    cause: () => fatal || logged || last,
  };
}

/** The rpicam-vid run for a camera; the binary is looked up at each start, so installing rpicam-apps later is enough. */
export function rpicamTool(src: RpicamSource, path?: string): FrameTool {
  const command = findOnPath(RPICAM_BINARIES, path) ?? RPICAM_BINARIES[0];
  return {
    tool: command,
    command,
    args: rpicamArgs(src),
    install: `${RPICAM_BINARIES.join(' and ')} are not on PATH: ${RPICAM_INSTALL}`,
    causes: rpicamCauses,
  };
}
