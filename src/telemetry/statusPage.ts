import { summariseOutput } from '../resultSummary.js';
import type { Result } from '../types.js';

/** The parts of /status the page shows (the daemon's status() object). */
export interface PageStatus {
  node: string;
  version: string;
  uptimeSeconds: number;
  healthy: boolean;
  provider: string | null;
  variant: string;
  cameras: Record<
    string,
    { fps: number; processed: number; dropped: number; skipped: number; failed: number; source: { state: string; lastError: string | null } | null }
  >;
  latencyMs: Record<string, { p50: number | null; p95: number | null }>;
  power: { governor: { level: string; temperatureC: number | null; powerState: string } } | null;
  lastResult: Pick<Result, 'camera' | 'finishedAt' | 'output'> | null;
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function lastResultText(r: NonNullable<PageStatus['lastResult']>): string {
  const items = summariseOutput(r.output);
  return items.length ? items.map((t) => `<li>${esc(t)}</li>`).join('') : '<li>(nothing found)</li>';
}

/** A plain HTML page over /status that refreshes itself: no script, works in any browser on the LAN. */
export function renderStatusPage(s: PageStatus): string {
  const cams = Object.entries(s.cameras)
    .map(
      ([n, c]) =>
        `<tr><td>${esc(n)}</td><td>${c.fps}</td><td>${c.processed}</td><td>${c.dropped}</td><td>${c.skipped}</td><td>${c.failed}</td><td>${esc(c.source?.state ?? 'local')}${c.source?.lastError ? ` — ${esc(c.source.lastError)}` : ''}</td></tr>`,
    )
    .join('');
  const lat = Object.entries(s.latencyMs)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.p50 ?? '–'}</td><td>${v.p95 ?? '–'}</td></tr>`)
    .join('');
  const gov = s.power?.governor;
  const last = s.lastResult;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>Outpost ${esc(s.node)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}.ok{color:#070}.bad{color:#b00}</style></head>
<body><h1>Outpost <small>${esc(s.node)}</small></h1>
<p class="${s.healthy ? 'ok' : 'bad'}">${s.healthy ? 'healthy' : 'not healthy'} · up ${s.uptimeSeconds} s · provider ${esc(s.provider)} · variant ${esc(s.variant)} · v${esc(s.version)}</p>
${gov ? `<p>governor <b>${esc(gov.level)}</b> · ${gov.temperatureC === null ? 'no temperature sensor' : `${gov.temperatureC.toFixed(1)} °C`} · power ${esc(gov.powerState)}</p>` : ''}
<h2>Cameras</h2><table><tr><th>camera</th><th>fps</th><th>processed</th><th>dropped</th><th>skipped</th><th>failed</th><th>source</th></tr>${cams}</table>
<h2>Latency (ms)</h2><table><tr><th>stage</th><th>p50</th><th>p95</th></tr>${lat}</table>
<h2>Last result</h2>${last ? `<p>${esc(last.camera)} at ${esc(new Date(last.finishedAt).toISOString())}</p><ul>${lastResultText(last)}</ul>` : '<p>none yet</p>'}
<p><a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p>
</body></html>
`;
}
