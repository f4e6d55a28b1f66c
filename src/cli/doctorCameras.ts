import { adviseCameras, GSTREAMER_INSTALL, isPiRawNode, probeCameras, RPICAM_INSTALL, type CameraInventory } from '../camera/index.js';
import type { OutpostConfig } from '../config/index.js';
import type { Finding } from './doctorInstall.js';

const GST_NEEDED = ['jpegenc', 'videoconvert', 'fdsink'];

/** gst-launch-1.0 with the elements Outpost appends, and the source elements the configured pipelines start with. */
function gstreamerFinding(inv: CameraInventory, pipelines: string[]): Finding {
  const sources = pipelines.map((p) => p.trim().split(/[\s!]/)[0]).filter((e) => /^[a-z0-9]+$/.test(e));
  const absent = inv.gstreamer ? [...new Set([...GST_NEEDED, ...sources])].filter((e) => inv.gstreamer!.elements[e] === false) : [];
  const ok = inv.gstreamer !== null && absent.length === 0;
  const argus = absent.includes('nvarguscamerasrc') ? ' (nvarguscamerasrc comes with JetPack: nvidia-l4t-gstreamer)' : '';
  return {
    check: 'gstreamer',
    ok,
    detail: inv.gstreamer ? `${inv.gstreamer.version}${absent.length ? `; missing elements: ${absent.join(', ')}` : ''}` : 'gst-launch-1.0 not found',
    fix: ok ? undefined : inv.gstreamer ? `apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good${argus}` : GSTREAMER_INSTALL,
    optional: pipelines.length === 0,
  };
}

/**
 * The camera part of `outpost doctor`: libcamera's and GStreamer's tools (required when a configured camera
 * uses them), v4l2 cameras configured on a Pi camera module's raw node, and what `outpost cameras` found.
 */
export async function cameraFindings(config: OutpostConfig | null): Promise<Finding[]> {
  const inv = await probeCameras();
  const sources = (config?.cameras ?? []).map((c) => c.source);
  const rpicamUsed = sources.some((s) => s.type === 'rpicam');
  const out: Finding[] = [
    {
      check: 'rpicam-vid',
      ok: inv.rpicam !== null && !(rpicamUsed && inv.rpicam.error),
      detail: inv.rpicam ? `${inv.rpicam.binary}: ${inv.rpicam.error ?? inv.rpicam.cameras.map((c) => `${c.index}: ${c.sensor}`).join(', ')}` : 'not found',
      fix: inv.rpicam ? (inv.rpicam.error ? 'check the ribbon cable and camera_auto_detect=1 in /boot/firmware/config.txt' : undefined) : RPICAM_INSTALL,
      optional: !rpicamUsed,
    },
    gstreamerFinding(
      inv,
      sources.flatMap((s) => (s.type === 'gstreamer' ? [s.pipeline] : [])),
    ),
  ];
  for (const s of sources) {
    if (s.type !== 'v4l2') continue;
    const node = inv.v4l2.find((d) => d.device === s.device);
    if (node && isPiRawNode(node.name))
      out.push({
        check: `camera ${s.device}`,
        ok: false,
        detail: `${node.name}: the raw receiver of a Pi camera module; ffmpeg reads unusable frames from it`,
        fix: 'use source: { type: rpicam, camera: 0 } (outpost cameras lists the index)',
      });
  }
  const found = adviseCameras(inv).cameras.filter((c) => c.yaml);
  out.push({
    check: 'cameras found',
    ok: true,
    detail: found.length ? found.map((c) => `${c.where}: ${c.yaml}`) : 'none (outpost cameras says what was looked for)',
  });
  return out;
}
