import { summariseOutput } from '../resultSummary.js';
import type { Result } from '../types.js';
import { GOVERNOR_LEVELS, type GovernorLevel } from '../vocabulary.js';

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
    {
      fps: number;
      processed: number;
      dropped: number;
      skipped: number;
      failed: number;
      paused?: boolean;
      source?: { state: string; lastError: string | null } | null;
    }
  >;
  latencyMs: Record<string, { p50: number | null; p95: number | null }>;
  power: { governor: { level: string; temperatureC: number | null; powerState: string } } | null;
  lastResult: Pick<Result, 'camera' | 'finishedAt' | 'output'> | null;
}

/** What the live feed adds: the last ten minutes of temperature and level, the last events, the frames shown. */
export interface PageLive {
  history: { at: number; temperatureC: number | null; level: string }[];
  events: { at: number; kind: string; camera?: string; text: string }[];
  frames: Record<string, string>;
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const time = (ms: number) => esc(new Date(ms).toISOString().slice(11, 19));

function lastResultText(r: NonNullable<PageStatus['lastResult']>): string {
  const items = summariseOutput(r.output);
  return items.length ? items.map((t) => `<li>${esc(t)}</li>`).join('') : '<li>(nothing found)</li>';
}

/** Temperature (line, left scale) and governor level (steps, right scale) over the last ten minutes, as inline SVG. */
function chart(history: PageLive['history']): string {
  const [w, h] = [600, 120];
  if (history.length < 2)
    return `<svg id="chart-svg" width="${w}" height="${h}" role="img" aria-label="no history yet"><text x="10" y="60">collecting…</text></svg>`;
  const t0 = history[0].at;
  const span = Math.max(1, history[history.length - 1].at - t0);
  const x = (at: number) => ((at - t0) / span) * (w - 40) + 30;
  const temps = history.filter((p) => p.temperatureC !== null).map((p) => p.temperatureC!);
  const [lo, hi] = temps.length ? [Math.min(...temps) - 2, Math.max(...temps) + 2] : [0, 1];
  const y = (c: number) => h - 10 - ((c - lo) / (hi - lo)) * (h - 20);
  const ly = (l: string) => h - 10 - (GOVERNOR_LEVELS.indexOf(l as GovernorLevel) / 3) * (h - 20);
  const temp = history.filter((p) => p.temperatureC !== null).map((p) => `${x(p.at).toFixed(1)},${y(p.temperatureC!).toFixed(1)}`);
  const level = history.map((p, i) => `${i ? 'H' : 'M'}${x(p.at).toFixed(1)} ${i ? `V${ly(p.level).toFixed(1)}` : ly(p.level).toFixed(1)}`).join(' ');
  return `<svg id="chart-svg" width="${w}" height="${h}" role="img" aria-label="temperature and governor level, last ten minutes">
<path d="${level}" fill="none" stroke="#b60" stroke-width="2"/>${temp.length ? `<polyline points="${temp.join(' ')}" fill="none" stroke="#06c" stroke-width="2"/>` : ''}
<text x="2" y="12" font-size="10" fill="#06c">${temps.length ? `${hi.toFixed(0)} °C` : 'no sensor'}</text><text x="${w - 60}" y="12" font-size="10" fill="#b60">level: ${esc(history[history.length - 1].level)}</text></svg>`;
}

/** The page's sections as HTML: rendered here for the first load and pushed again with every live update. */
export function renderSections(s: PageStatus, live: PageLive | null): Record<string, string> {
  const gov = s.power?.governor;
  const last = s.lastResult;
  return {
    summary: `<span class="${s.healthy ? 'ok' : 'bad'}">${s.healthy ? 'healthy' : 'not healthy'}</span> · up ${s.uptimeSeconds} s · provider ${esc(s.provider)} · variant ${esc(s.variant)} · v${esc(s.version)}`,
    governor: gov
      ? `governor <b>${esc(gov.level)}</b> · ${gov.temperatureC === null ? 'no temperature sensor' : `${gov.temperatureC.toFixed(1)} °C`} · power ${esc(gov.powerState)}`
      : 'governor off',
    cameras: Object.entries(s.cameras)
      .map(
        ([n, c]) =>
          `<tr><td>${esc(n)}</td><td>${c.fps}</td><td>${c.processed}</td><td>${c.dropped}</td><td>${c.skipped}</td><td>${c.failed}</td><td>${c.paused ? 'paused' : esc(c.source?.state ?? 'local')}${c.source?.lastError ? ` — ${esc(c.source.lastError)}` : ''}</td></tr>`,
      )
      .join(''),
    latency: Object.entries(s.latencyMs)
      .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.p50 ?? '–'}</td><td>${v.p95 ?? '–'}</td></tr>`)
      .join(''),
    last: last ? `<p>${esc(last.camera)} at ${esc(new Date(last.finishedAt).toISOString())}</p><ul>${lastResultText(last)}</ul>` : '<p>none yet</p>',
    chart: chart(live?.history ?? []),
    events:
      (live?.events ?? []).map((e) => `<li>${time(e.at)} ${esc(e.kind)}${e.camera ? ` ${esc(e.camera)}` : ''}: ${esc(e.text)}</li>`).join('') ||
      '<li>none yet</li>',
  };
}

/** Reloads each section pushed over /events, and a camera's image when its frame changes. No framework, nothing fetched from outside. */
const SCRIPT = `const feed = new EventSource('/events');
feed.onmessage = (m) => {
  const u = JSON.parse(m.data);
  for (const [id, html] of Object.entries(u.sections)) { const el = document.getElementById(id); if (el && el.innerHTML !== html) el.innerHTML = html; }
  for (const [camera, frame] of Object.entries(u.frames)) { const img = document.getElementById('img-' + camera); if (img && img.dataset.frame !== frame) { img.dataset.frame = frame; img.src = '/cameras/' + encodeURIComponent(camera) + '/latest.jpg?frame=' + encodeURIComponent(frame); } }
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
};`;

/** The status page: complete on first load (it reads without script), then kept live by server-sent events. */
export function renderStatusPage(s: PageStatus, live: PageLive | null = null): string {
  const sec = renderSections(s, live);
  const images = Object.keys(s.cameras)
    .map(
      (c) =>
        `<figure><img id="img-${esc(c)}" alt="${esc(c)}: newest frame with its result drawn" src="/cameras/${encodeURIComponent(c)}/latest.jpg" data-frame="${esc(live?.frames[c] ?? '')}"><figcaption>${esc(c)}</figcaption></figure>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Outpost ${esc(s.node)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}.ok{color:#070}.bad{color:#b00}figure{display:inline-block;margin:0 1em 1em 0}img{max-width:480px;border:1px solid #ccc}</style></head>
<body><h1>Outpost <small>${esc(s.node)}</small></h1>
<p id="summary">${sec.summary}</p>
<p id="governor">${sec.governor}</p>
<div id="chart">${sec.chart}</div>
<h2>Cameras</h2><table><thead><tr><th>camera</th><th>fps</th><th>processed</th><th>dropped</th><th>skipped</th><th>failed</th><th>source</th></tr></thead><tbody id="cameras">${sec.cameras}</tbody></table>
${images}
<h2>Latency (ms)</h2><table><thead><tr><th>stage</th><th>p50</th><th>p95</th></tr></thead><tbody id="latency">${sec.latency}</tbody></table>
<h2>Last result</h2><div id="last">${sec.last}</div>
<h2>Events</h2><ol id="events">${sec.events}</ol>
<p><a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/events">/events</a></p>
<script>${SCRIPT}</script>
</body></html>
`;
}
