import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { validateDetailed as validateCron } from 'node-cron';
import { refMessage } from './schemaWalk.js';
import type { OutpostConfig } from './schema.js';

type Problem = { path: (string | number)[]; message: string };

/** Checks across sections for the networked parts: keyring, MQTT, jobs, uploads (and offload, when configured). */
export function networkProblems(cfg: OutpostConfig, baseDir: string): Problem[] {
  return [...fleetProblems(cfg, baseDir), ...uploadProblems(cfg), ...offloadProblems(cfg), ...statusProblems(cfg, baseDir)];
}

/** Loopback addresses: the status page needs no token there. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A status page reachable from the network says who may read it (frames included). */
function statusProblems(cfg: OutpostConfig, baseDir: string): Problem[] {
  const s = cfg.status;
  if (!s.enabled) return [];
  if (s.auth === undefined && !isLoopbackHost(s.host))
    return [
      {
        path: ['status', 'auth'],
        message: `the status page listens on ${s.host}, beyond loopback, and shows camera frames: set status.auth: { tokenFile: /etc/outpost/status-token } (or { token: … }, at least 16 characters), or write status.auth: none to let anyone who can reach it read it`,
      },
    ];
  if (typeof s.auth === 'object' && 'tokenFile' in s.auth && !existsSync(resolve(baseDir, s.auth.tokenFile)))
    return [
      { path: ['status', 'auth', 'tokenFile'], message: `file ${resolve(baseDir, s.auth.tokenFile)} does not exist; write a token of 16+ characters there` },
    ];
  return [];
}

/** What the keyring, the MQTT link and the jobs need beyond their own fields. */
function fleetProblems(cfg: OutpostConfig, baseDir: string): Problem[] {
  const out: Problem[] = [];
  const names = new Set<string>();
  cfg.keyring.forEach((k, i) => {
    if (names.has(k.name)) out.push({ path: ['keyring', i, 'name'], message: `key name "${k.name}" is used twice; names must be unique` });
    names.add(k.name);
    const needs = (field: 'sign' | 'box', roles: string[]) => {
      const role = roles.find((r) => k.roles.includes(r as never));
      if (role && !k[field])
        out.push({ path: ['keyring', i, field], message: `a ${role} key needs ${field === 'sign' ? 'an Ed25519 "sign"' : 'an X25519 "box"'} public key` });
    };
    needs('sign', ['operator', 'peer', 'collector']);
    needs('box', ['collector', 'peer']);
  });
  const mqtt = cfg.telemetry.mqtt;
  for (const f of ['ca', 'cert', 'key'] as const) {
    if (mqtt?.[f] && !existsSync(resolve(baseDir, mqtt[f])))
      out.push({ path: ['telemetry', 'mqtt', f], message: `file ${resolve(baseDir, mqtt[f])} does not exist` });
  }
  if (mqtt && mqtt.reconnect.maxMs < mqtt.reconnect.initialMs)
    out.push({ path: ['telemetry', 'mqtt', 'reconnect', 'maxMs'], message: 'must be at least reconnect.initialMs' });
  const cameras = cfg.cameras.map((c) => c.name);
  for (const cam of Object.keys(mqtt?.events ?? {})) {
    if (cam !== '*' && !cameras.includes(cam)) out.push({ path: ['telemetry', 'mqtt', 'events', cam], message: refMessage('camera', cam, cameras) });
  }
  for (const [job, settings] of Object.entries(cfg.jobs)) {
    const check = validateCron(settings.schedule);
    if (!check.valid)
      out.push({
        path: ['jobs', job, 'schedule'],
        message: `"${settings.schedule}" is not a cron expression: ${check.errors.map((e) => e.message).join('; ')}`,
      });
  }
  return out;
}

/** The collector must be a trusted key that can receive sealed items; the transport must have where to go. */
function uploadProblems(cfg: OutpostConfig): Problem[] {
  const up = cfg.upload;
  if (!up) return [];
  const out: Problem[] = [];
  const key = cfg.keyring.find((k) => k.name === up.collector.key);
  if (!key)
    out.push({
      path: ['upload', 'collector', 'key'],
      message: refMessage(
        'keyring entry',
        up.collector.key,
        cfg.keyring.map((k) => k.name),
      ),
    });
  else if (!key.roles.includes('collector') || !key.box || !key.sign)
    out.push({ path: ['upload', 'collector', 'key'], message: `keyring entry ${key.name} needs role collector, a box key and a sign key` });
  if (up.transport === 'http' && !up.collector.url && !up.collector.urls)
    out.push({ path: ['upload', 'collector', 'url'], message: "transport http needs the collector's url (or urls)" });
  if (up.transport === 'mqtt' && !cfg.telemetry.mqtt)
    out.push({ path: ['upload', 'transport'], message: 'transport mqtt needs telemetry.mqtt (the broker to publish to)' });
  const faces = up.anonymise.faces;
  if (faces && !cfg.models[faces.model])
    out.push({ path: ['upload', 'anonymise', 'faces', 'model'], message: refMessage('model', faces.model, Object.keys(cfg.models)) });
  const cameras = cfg.cameras.map((c) => c.name);
  for (const cam of Object.keys(up.select))
    if (cam !== '*' && !cameras.includes(cam)) out.push({ path: ['upload', 'select', cam], message: refMessage('camera', cam, cameras) });
  return out;
}

/** Peers must be trusted with keys to seal to; offloaded stages must be a run of their pipeline's stages. */
function offloadProblems(cfg: OutpostConfig): Problem[] {
  const off = cfg.offload;
  if (!off) return [];
  const out: Problem[] = [];
  off.peers.forEach((p, i) => {
    const key = cfg.keyring.find((k) => k.name === p.name);
    if (!key)
      out.push({
        path: ['offload', 'peers', i, 'name'],
        message: refMessage(
          'keyring entry',
          p.name,
          cfg.keyring.map((k) => k.name),
        ),
      });
    else if (!key.roles.includes('peer') || !key.box)
      out.push({ path: ['offload', 'peers', i, 'name'], message: `keyring entry ${key.name} needs role peer and a box key` });
  });
  for (const [pipeline, stages] of Object.entries(off.stages)) {
    const p = cfg.pipelines[pipeline];
    if (!p) {
      out.push({ path: ['offload', 'stages', pipeline], message: refMessage('pipeline', pipeline, Object.keys(cfg.pipelines)) });
      continue;
    }
    const names = p.stages.map((s) => s.name);
    const from = names.indexOf(stages[0]);
    if (from < 0 || stages.some((s, i) => names[from + i] !== s))
      out.push({
        path: ['offload', 'stages', pipeline],
        message: `offloaded stages must be a run of the pipeline's stages, in order (of ${names.join(', ')})`,
      });
  }
  return out;
}
