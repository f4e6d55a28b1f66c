import { pipelineWords, type CameraSourceConfig } from '../config/index.js';
import type { CauseReader, FrameTool } from './childFrames.js';

type GstreamerSource = Extract<CameraSourceConfig, { type: 'gstreamer' }>;

export const GSTREAMER_INSTALL = 'install it (apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)';

/** The pipeline's last stage already makes JPEGs (jpegenc, nvjpegenc, v4l2jpegenc …, or image/jpeg caps). */
function endsInJpeg(words: string[]): boolean {
  const last = words.lastIndexOf('!');
  const element = words[last + 1] ?? '';
  return /jpegenc$/.test(element) || element.startsWith('image/jpeg');
}

/** gst-launch-1.0 arguments: the user's pipeline, a JPEG encoder unless it has one, and a sink to stdout. */
export function gstreamerArgs(src: GstreamerSource): string[] {
  const words = pipelineWords(src.pipeline);
  const encode = endsInJpeg(words) ? [] : ['!', 'videoconvert', '!', 'jpegenc', `quality=${src.quality}`];
  return ['-q', ...words, ...encode, '!', 'fdsink', 'fd=1', 'sync=false'];
}

/**
 * gst-launch-1.0's own error lines: `WARNING: erroneous pipeline: …` when the pipeline does not parse or link,
 * `ERROR: from element /GstPipeline:pipeline0/GstX:x0: message` at run time, followed by a debug-info block
 * whose last line says what exactly (`No such file "/dev/video9"`). The first element error is the cause;
 * the lines after it ("pipeline doesn't want to preroll") only repeat that it failed.
 */
function gstCauses(): CauseReader {
  let cause = '';
  let detail: string[] | null = null; // collecting the first element error's debug info
  let skip = 0;
  return {
    line(text) {
      const parse = /^WARNING: (erroneous pipeline: .*)$/.exec(text);
      const element = /^ERROR: from element (\S+): (.*)$/.exec(text);
      if (detail && !/^(ERROR|WARNING):/.test(text)) {
        // "Additional debug info:", then "file.c(123): function (): /GstPipeline:…:", then the detail's lines
        if (skip > 0) skip--;
        else if (detail.join(' ').length < 400) detail.push(text);
        return;
      }
      if (detail?.length) cause = `${cause} (${detail.join(' ')})`;
      detail = null;
      if (cause) return;
      if (parse) cause = parse[1];
      else if (element) {
        cause = `${element[1].split(/[/:]/).pop()}: ${element[2]}`;
        detail = [];
        skip = 2;
      } else if (/^ERROR: /.test(text)) cause = text.slice('ERROR: '.length);
    },
    cause: () => (detail?.length ? `${cause} (${detail.join(' ')})` : cause),
  };
}

export function gstreamerTool(src: GstreamerSource, binary = 'gst-launch-1.0'): FrameTool {
  return { tool: 'gst-launch-1.0', command: binary, args: gstreamerArgs(src), install: GSTREAMER_INSTALL, causes: gstCauses };
}
