import { join } from 'node:path';
import type { Component, ComponentContext } from '../core/index.js';
import { Keyring, readKeys } from '../crypto/index.js';
import type { MqttLink } from '../mqtt/index.js';
import type { InferenceEngine } from '../runtime/index.js';
import { imageHeader } from '../vision/index.js';
import { OffloadPlacer } from './offloadPlacer.js';
import type { PipelineSet } from '../pipeline/index.js';
import { Announcer } from './announcer.js';
import { OffloadClient } from './client.js';
import { PeerFileCache } from './fileCache.js';
import { PeerTable } from './peerTable.js';
import { OffloadServer } from './server.js';
import { RemotePipelines, sha256File } from './remotePipelines.js';

/** Offload for the composition root: the placer the cameras ask per frame, the server that runs peers' frames, discovery over MQTT. */
export function offloadComponents(ctx: (name: string) => ComponentContext, engine: InferenceEngine, set: PipelineSet, mqtt: MqttLink | null) {
  const c = ctx('offload').config;
  const keys = () => readKeys(c.node.keysDir!);
  const deviceId = c.telemetry.mqtt?.deviceId ?? c.node.name;
  const peers = new PeerTable(new Keyring(c.keyring), c.offload!, ctx('offload').log);
  const source = (model: string) => ({
    file: c.models[model].file,
    sha256: set.variants.get(model)?.manifest.source.sha256 ?? sha256File(c.models[model].file),
  });
  const placer = new OffloadPlacer(ctx('offload'), set, peers, new OffloadClient(deviceId, keys, () => c.offload!.placement.timeoutMs), source);
  const serve = c.offload!.serve;
  const cache = serve.enabled && serve.acceptModels ? new PeerFileCache(join(c.node.stateDir, 'peer-files'), serve.modelCacheBytes) : null;
  const remote = serve.enabled ? new RemotePipelines(ctx('offload-server'), engine, set, cache) : null;
  const server =
    remote &&
    new OffloadServer(ctx('offload-server'), {
      keys,
      models: () => remote.models(),
      files: () => remote.files(),
      run: (stages, frame, regions) => remote.run(stages, frame, regions),
      frameHeader: imageHeader,
      cache,
      close: () => remote.stop(),
    });
  const announcer = mqtt && new Announcer(ctx('offload-announcer'), mqtt, peers, server ? { keys, port: () => server.port, load: () => server.load() } : null);
  const before: Component[] = [...(server ? [server] : []), placer];
  return { placer, before, after: announcer ? [announcer] : [] };
}
