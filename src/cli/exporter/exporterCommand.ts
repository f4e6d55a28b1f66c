import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OutpostError, errorMessage } from '../../errors.js';
import { logRejection } from '../../lastResort.js';
import { createLogger } from '../../log.js';
import { openBroker, redactUrl } from '../../mqtt/index.js';
import { createBoundedServer } from '../../net/index.js';
import { brokerTarget, describeBrokerEvent, reconnecting, type BrokerFlags } from '../brokerFlags.js';
import { MAX_MESSAGE_BYTES, readMessage, topicOf } from './fleetMessages.js';
import { checkNodeLabels, FleetMetrics } from './fleetMetrics.js';
import { FleetState } from './fleetState.js';

export interface ExporterOptions extends BrokerFlags {
  broker?: string;
  listen: string;
  /** node labels (`node.labels`) to put on every device series */
  label: string[];
  maxDevices: number;
  /** seconds */
  forgetAfter: number;
  /** stop after this many seconds (scripts and tests) */
  for?: number;
}

/** What `outpost monitor --prometheus` runs with, and the flags' defaults. */
export const EXPORTER_DEFAULTS = { listen: '127.0.0.1:9469', label: [] as string[], maxDevices: 10_000, forgetAfter: 86_400 };

/** HOST:PORT of --listen, or a usage error. */
function listenAddress(listen: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new OutpostError('OUTPOST_E_USAGE', `--listen ${listen} is not HOST:PORT (such as 127.0.0.1:9469 or 0.0.0.0:9469)`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/**
 * `outpost exporter`: the whole fleet in Prometheus. Subscribes to every node's status and telemetry under the base
 * topic and serves GET /metrics: per-device series labelled by device (and the chosen node labels), and its own
 * counters of what it took, ignored and forgot. It runs until SIGTERM; a lost broker is retried with backoff
 * (the devices' series then age and go down, as they should when nothing can be heard).
 */
export async function exporterCommand(opts: ExporterOptions): Promise<void> {
  const { host, port } = listenAddress(opts.listen);
  const target = brokerTarget(opts.broker, opts);
  const labels = checkNodeLabels(opts.label);
  const log = createLogger({ level: 'info', format: 'auto' }).child({ component: 'exporter' });
  const fleet = new FleetState({ maxDevices: opts.maxDevices, forgetAfterMs: opts.forgetAfter * 1000 });
  const metrics = new FleetMetrics(fleet, labels);
  // the port first: a taken one is said before any wait on the broker
  const server = metricsServer(metrics, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new OutpostError('OUTPOST_E_USAGE', `cannot listen on ${opts.listen} (${errorMessage(err)})`, { cause: err })));
    server.listen(port, host, resolve);
  });
  const onEvent = reconnecting((e) => {
    metrics.brokerConnected.set(e.kind === 'back' ? 1 : 0);
    if (e.kind === 'lost') log.warn(describeBrokerEvent(target.url, e));
    else log.info(describeBrokerEvent(target.url, e));
  });
  const client = await openBroker(target.url, { ...target.options, maxPacketBytes: MAX_MESSAGE_BYTES, reconnect: onEvent });
  metrics.brokerConnected.set(1);
  const prefix = `${target.base}/`;
  client.on('message', (topic, payload) => {
    const at = topicOf(topic, prefix);
    if (at) fleet.take(readMessage(at.device, at.kind, payload), Date.now());
  });
  await client.subscribeAsync([`${prefix}+/status`, `${prefix}+/telemetry`, `${prefix}+/facts`], { qos: 0 });
  const bound = (server.address() as AddressInfo).port;
  log.info({ url: `http://${host}:${bound}/metrics`, broker: redactUrl(target.url), base: target.base, labels }, 'exporter listening');
  await new Promise<void>((resolve) => {
    if (opts.for) setTimeout(resolve, opts.for * 1000);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
  });
  server.close();
  server.closeAllConnections();
  await client.endAsync();
}

function metricsServer(metrics: FleetMetrics, log: ReturnType<typeof createLogger>) {
  // the bounded server already holds these to a few lines per interval
  const warn = (err: Error) => log.warn({ err: err.message }, 'scrape server error');
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
      return;
    }
    const text = metrics.scrape(Date.now()).then((m) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(m));
    text.catch((err: unknown) => {
      res.writeHead(500).end();
      logRejection(log, 'serving metrics')(err);
    });
  };
  return createBoundedServer(handle, { refused: (r) => metrics.refused(r), warn });
}
