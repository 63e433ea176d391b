// The nimbus dashboard page: renders the view the server pushes over server-sent events
// (/api/stream, one `snapshot` event per round); no framework, no build step.
'use strict';

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text, never HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'testid') node.dataset.testid = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const short = (id) => (id || '').slice(0, 8);
const num = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
const ms = (v) => {
  if (v === null || v === undefined) return '–';
  if (v < 1) return `${(v * 1000).toFixed(0)} µs`;
  if (v < 100) return `${v.toFixed(2)} ms`;
  return `${v.toFixed(0)} ms`;
};
const rate = (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1));
function uptime(s) {
  if (s === null || s === undefined) return '';
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** An event's RFC 3339 time as local wall-clock time (the title keeps the original). */
function eventTime(text) {
  const when = new Date(text);
  return Number.isNaN(when.getTime()) ? text || '' : when.toLocaleTimeString();
}

function renderSummary(view) {
  const actors = new Set();
  let instances = 0, providers = 0;
  for (const h of view.hosts) {
    for (const a of h.actors) { actors.add(a.id); instances += a.instances; }
    providers += h.providers.length;
  }
  $('sum-hosts').textContent = view.hosts.length;
  $('sum-actors').textContent = actors.size;
  $('sum-instances').textContent = `${instances} instance${instances === 1 ? '' : 's'}`;
  $('sum-providers').textContent = providers;
  $('sum-links').textContent = view.links.length;
  const rates = view.operations.map((o) => o.rate_per_sec).filter((r) => r !== null);
  $('sum-rate').textContent = rates.length ? rate(rates.reduce((a, b) => a + b, 0)) : '–';
  $('sum-window').textContent = `last ${view.window_secs} s`;
  const errors = view.operations.reduce((a, o) => a + o.window_errors, 0);
  $('sum-errors').textContent = errors;
  $('sum-errors').classList.toggle('bad', errors > 0);
  $('ops-note').textContent =
    `Calls and errors since each host started. Calls/s, p50 and p99 are over the last ${view.window_secs} s, ` +
    'estimated from the latency histogram\u2019s bucket counts (the difference of two snapshots).';
}

// Calls/s of each (actor, operation) over the last views, for the trend line.
const TREND_POINTS = 60;
const trends = new Map();

/** A small SVG line of `values` (null: no rate yet), scaled to its own maximum. */
function sparkline(values) {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 90, height = 20;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('class', 'spark');
  const max = Math.max(1e-9, ...values.map((v) => v || 0));
  const step = width / (TREND_POINTS - 1);
  const offset = (TREND_POINTS - values.length) * step;
  const points = values
    .map((v, i) => `${(offset + i * step).toFixed(1)},${(height - 2 - ((v || 0) / max) * (height - 4)).toFixed(1)}`)
    .join(' ');
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points);
  svg.append(line);
  return svg;
}

function renderOperations(view) {
  const seen = new Set();
  for (const o of view.operations) {
    const key = `${o.actor_id}/${o.operation}`;
    seen.add(key);
    const series = trends.get(key) || [];
    series.push(o.rate_per_sec);
    if (series.length > TREND_POINTS) series.shift();
    trends.set(key, series);
  }
  for (const key of trends.keys()) if (!seen.has(key)) trends.delete(key);
  const rows = view.operations.map((o) =>
    el('tr', { testid: 'op-row', 'data-actor-name': o.actor_name, 'data-actor-id': o.actor_id, 'data-operation': o.operation },
      el('td', {}, el('span', { class: 'name', testid: 'op-actor' }, o.actor_name), ' ', el('span', { class: 'id' }, short(o.actor_id))),
      el('td', { testid: 'op-operation' }, o.operation),
      el('td', { class: 'num' }, o.hosts),
      el('td', { class: 'num', testid: 'op-calls' }, num(o.calls)),
      el('td', { class: o.errors ? 'num err' : 'num', testid: 'op-errors' }, num(o.errors)),
      el('td', { class: 'num', testid: 'op-rate' }, rate(o.rate_per_sec)),
      el('td', { class: 'trend' }, sparkline(trends.get(`${o.actor_id}/${o.operation}`) || [])),
      el('td', { class: 'num', testid: 'op-p50' }, ms(o.p50_ms)),
      el('td', { class: 'num', testid: 'op-p99' }, ms(o.p99_ms)),
    ));
  $('ops-rows').replaceChildren(...rows);
  $('ops-empty').hidden = rows.length > 0;
}

function renderHosts(view) {
  const cards = view.hosts.map((h) => {
    const labels = Object.entries(h.labels).map(([k, v]) => el('span', { class: 'chip' }, `${k}=${v}`));
    const actors = h.actors.length
      ? el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'Actor'), el('th', { class: 'num' }, 'Instances'), el('th', { class: 'num' }, 'In use'), el('th', { class: 'num' }, 'Calls'), el('th', { class: 'num' }, 'Errors'))),
          el('tbody', {}, h.actors.map((a) =>
            el('tr', { testid: 'actor-row', 'data-actor-name': a.name, 'data-actor-id': a.id },
              el('td', {}, el('span', { class: 'name', testid: 'actor-name' }, a.name), ' ', el('span', { class: 'id' }, short(a.id))),
              el('td', { class: 'num', testid: 'actor-instances' }, a.live ?? a.instances),
              el('td', { class: 'num' }, a.in_use ?? '–'),
              el('td', { class: 'num', testid: 'actor-calls' }, num(a.calls)),
              el('td', { class: a.errors ? 'num err' : 'num' }, num(a.errors)),
            ))))
      : el('p', { class: 'empty' }, 'No actors.');
    const providers = h.providers.length
      ? el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'Provider'), el('th', {}, 'Link name'), el('th', { class: 'num' }, 'Restarts'))),
          el('tbody', {}, h.providers.map((p) =>
            el('tr', { testid: 'provider-row', 'data-contract': p.contract_id },
              el('td', {}, el('span', { class: 'name' }, p.image_ref || p.contract_id), ' ',
                p.image_ref ? el('span', { class: 'muted' }, p.contract_id) : null, ' ', el('span', { class: 'id' }, short(p.id))),
              el('td', {}, p.link_name),
              el('td', { class: p.restarts ? 'num err' : 'num', testid: 'provider-restarts' }, p.restarts ?? '–'),
            ))))
      : el('p', { class: 'empty' }, 'No providers.');
    return el('div', { class: 'card host', testid: 'host-card', 'data-host-id': h.id },
      el('h3', {}, h.name || short(h.id)),
      el('div', { class: 'meta' }, el('span', { class: 'id', testid: 'host-id' }, h.id),
        h.uptime_seconds !== null ? ` · up ${uptime(h.uptime_seconds)}` : '',
        h.version ? ` · v${h.version}` : ''),
      labels.length ? el('div', {}, labels) : null,
      h.stats_error ? el('div', { class: 'warn', testid: 'host-stats-error' }, h.stats_error) : null,
      !h.stats_error && !h.metrics ? el('div', { class: 'warn' }, 'This host keeps no call metrics (start it with --dashboard or --metrics-addr).') : null,
      el('div', { class: 'sub-h' }, 'Actors'), actors,
      el('div', { class: 'sub-h' }, 'Providers'), providers,
    );
  });
  $('hosts').replaceChildren(...cards);
}

function renderLinks(view) {
  const rows = view.links.map((l) =>
    el('tr', { testid: 'link-row', 'data-actor-name': l.actor_name, 'data-contract': l.contract_id },
      el('td', {}, el('span', { class: 'name' }, l.actor_name), ' ', el('span', { class: 'id' }, short(l.actor_id))),
      el('td', { testid: 'link-contract' }, l.contract_id),
      el('td', {}, el('span', { class: 'name' }, l.provider_name), ' ', el('span', { class: 'id' }, short(l.provider_id))),
      el('td', {}, l.link_name),
      el('td', {}, Object.entries(l.values).map(([k, v]) => el('span', { class: 'chip' }, `${k}=${v}`))),
    ));
  $('link-rows').replaceChildren(...rows);
  $('links-empty').hidden = rows.length > 0;
}

function renderEvents(view) {
  const items = view.events.map((e) =>
    el('li', { testid: 'event' },
      el('time', { dateTime: e.time, title: e.time }, eventTime(e.time)),
      el('span', { class: /failed/.test(e.kind) ? 'kind failed' : 'kind' }, e.kind), ' ',
      el('span', { class: 'id' }, e.source === 'n/a' ? '' : short(e.source)), ' ',
      e.summary));
  $('events').replaceChildren(...items);
  $('events-empty').hidden = items.length > 0;
}

function render(view) {
  $('lattice').textContent = view.lattice;
  $('mode').textContent = view.mode;
  renderSummary(view);
  renderOperations(view);
  renderHosts(view);
  renderLinks(view);
  renderEvents(view);
  const problems = $('problems');
  problems.hidden = view.problems.length === 0;
  problems.replaceChildren(...view.problems.map((p) => el('div', {}, p)));
  $('updated').textContent = new Date(view.generated_at_ms).toLocaleTimeString();
  document.body.dataset.generatedAt = view.generated_at_ms;
}

function live(on, text) {
  $('live-dot').className = on ? 'dot on' : 'dot off';
  $('live-text').textContent = text;
}

function connect() {
  const source = new EventSource('/api/stream');
  source.addEventListener('open', () => live(true, 'live'));
  source.addEventListener('snapshot', (event) => {
    live(true, 'live');
    try {
      render(JSON.parse(event.data));
    } catch (err) {
      console.warn('bad snapshot', err);
    }
  });
  // EventSource reconnects by itself; say so meanwhile.
  source.addEventListener('error', () => live(false, 'reconnecting…'));
}

connect();
