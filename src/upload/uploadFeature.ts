import type { Component, ContextFor } from '../core/index.js';
import { faceDetectorPipeline, type PipelineConfig, type ResolvedUploadConfig } from '../config/index.js';
import { publicKeyBytes, readKeys } from '../crypto/index.js';
import { OutpostError } from '../errors.js';
import type { MqttLink } from '../mqtt/index.js';
import type { Box, Frame, PipelineOutput } from '../types.js';
import type { PixelBox } from '../vision/index.js';
import { HttpTransport, MqttTransport, type Transport } from './transports.js';
import { Uploader } from './uploader.js';

/** The pipeline anonymising runs: the face detector `upload.anonymise.faces` names, under a name no config can use. */
export const FACE_PIPELINE = '__faces';

/** What the upload feature asks of the pipelines: the face pipeline, run on a frame. */
export interface FramePipelines {
  get(name: string): { process(frame: Frame): Promise<{ output: PipelineOutput }> };
}

/** A face box grown by `grow` of its size on every side: a detector's box hugs the face, hair and ears stick out. */
export function grownBox([x0, y0, x1, y1]: Box, grow: number): PixelBox {
  const [gx, gy] = [(x1 - x0) * grow, (y1 - y0) * grow];
  return [x0 - gx, y0 - gy, x1 + gx, y1 + gy];
}

/** The upload feature: pipelines it runs beside the configured ones, and, in their place in the list, its components. */
export interface UploadParts {
  /** the face detector when faces are anonymised (none otherwise) */
  pipelines: Record<string, PipelineConfig>;
  components(deps: { pipelines: FramePipelines; link: MqttLink | null }): Component[];
}

/**
 * Sealed uploads, when `upload:` is configured: the uploader, sealing to the collector's keys, over HTTP or the
 * fleet's MQTT link, hiding the faces the detector finds.
 */
export function uploadFeature(ctx: ContextFor): UploadParts {
  const c = ctx('upload').config;
  const up = c.upload;
  if (!up) return { pipelines: {}, components: () => [] };
  const faces = up.anonymise.faces;
  return {
    pipelines: faces ? { [FACE_PIPELINE]: faceDetectorPipeline(faces.model, faces.minScore) } : {},
    components: (deps) => [uploader(ctx, up, deps)],
  };
}

function uploader(ctx: ContextFor, up: ResolvedUploadConfig, deps: { pipelines: FramePipelines; link: MqttLink | null }): Uploader {
  const { node } = ctx('upload').config;
  const faces = up.anonymise.faces;
  const findFaces =
    faces &&
    (async (frame: Frame) => ((await deps.pipelines.get(FACE_PIPELINE).process(frame)).output.detections ?? []).map((d) => grownBox(d.box, faces.grow)));
  const { box, sign } = up.collector.keys;
  return new Uploader(ctx('upload'), up, {
    deviceId: node.deviceId,
    keys: () => readKeys(node.keysDir),
    collector: { box: publicKeyBytes(box), sign: publicKeyBytes(sign) },
    transport: transport(up, deps.link),
    faces: findFaces,
  });
}

function transport(up: ResolvedUploadConfig, link: MqttLink | null): Transport {
  const timeoutMs = up.delivery.timeoutSeconds * 1000;
  if (up.transport === 'http') return new HttpTransport(up.collector.urls, timeoutMs);
  if (!link) throw new OutpostError('OUTPOST_E_CONFIG', 'upload.transport: mqtt needs telemetry.mqtt (the broker to publish to)');
  return new MqttTransport(link, timeoutMs);
}
