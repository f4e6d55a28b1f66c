import { join } from 'node:path';
import type { Component, ContextFor } from '../core/index.js';
import { Keyring, readKeys } from '../crypto/index.js';
import type { MqttLink } from '../mqtt/index.js';
import type { InferenceEngine } from '../runtime/index.js';
import { imageHeader } from '../vision/index.js';
import { OffloadPlacer } from './offloadPlacer.js';
import type { FramePlacer, PipelineSet } from '../pipeline/index.js';
import { Announcer } from './announcer.js';
import { OffloadClient } from './client.js';
import { PeerFileCache } from './fileCache.js';
import { PeerTable } from './peerTable.js';
import { OffloadServer } from './server.js';
import { RemotePipelines, sha256File } from './remotePipelines.js';

/** What the offload feature gives the composition root: the placer cameras ask per frame, and its components in two places of the list. */
export interface OffloadParts {
  /** absent without `offload:`: every frame runs here */
  placer?: FramePlacer;
  /** before the cameras: the server that runs peers' frames, the placer */
  serving: Component[];
  /** after the MQTT link: discovery of peers */
  discovery: Component[];
}

/** Offload, when `offload:` is configured: the placer the cameras ask per frame, the server that runs peers' frames, discovery over MQTT. */
export function offloadFeature(ctx: ContextFor, deps: { engine: InferenceEngine; pipelines: PipelineSet; link: MqttLink | null }): OffloadParts {
  const c = ctx('offload').config;
  const off = c.offload;
  if (!off) return { serving: [], discovery: [] };
  const { engine, pipelines: set, link: mqtt } = deps;
  const keys = () => readKeys(c.node.keysDir);
  const peers = new PeerTable(new Keyring(c.keyring), off, ctx('offload').log);
  const source = (model: string) => ({
    file: c.models[model].file,
    sha256: set.variants.get(model)?.manifest.source.sha256 ?? sha256File(c.models[model].file),
  });
  const placer = new OffloadPlacer(ctx('offload'), off, set, peers, new OffloadClient(c.node.deviceId, keys, () => off.placement.timeoutMs), source);
  const serve = off.serve;
  const cache = serve.enabled && serve.acceptModels ? new PeerFileCache(join(c.node.stateDir, 'peer-files'), serve.modelCacheBytes) : null;
  const remote = serve.enabled ? new RemotePipelines(ctx('offload-server'), engine, set, cache) : null;
  const server =
    remote &&
    new OffloadServer(ctx('offload-server'), off, {
      keys,
      models: () => remote.models(),
      files: () => remote.files(),
      run: (stages, frame, regions) => remote.run(stages, frame, regions),
      frameHeader: imageHeader,
      cache,
      close: () => remote.stop(),
    });
  const announcer =
    mqtt && new Announcer(ctx('offload-announcer'), off, mqtt, peers, server ? { keys, port: () => server.port, load: () => server.load() } : null);
  return { placer, serving: [...(server ? [server] : []), placer], discovery: announcer ? [announcer] : [] };
}
