// vproxy-dashboard's page: three views (overview, job list, job) drawn from
// the JSON of /api/*, kept live by the server-sent events of /events.
// Every value reaches the page through textContent or setAttribute, never
// as HTML: file names, errors and tenants are the uploaders' text.
'use strict';

const TYPES = ['proxy_generation', 'metadata_extraction', 'thumbnail_generation', 'video_deletion', 'proxy_segment'];
const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];
const TYPE_COLORS = {
  proxy_generation: '#2b6cb0', metadata_extraction: '#319795', thumbnail_generation: '#805ad5',
  video_deletion: '#718096', proxy_segment: '#dd6b20',
};
const SVG = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------- DOM helpers

// An element with attributes (class, href, data-*...) and children (nodes or text).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'hidden') el.hidden = true;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// An SVG element with attributes.
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const jobHref = (id) => '#/job/' + encodeURIComponent(id);
const badge = (status) => h('span', { class: 'badge ' + status }, status);

function progressBar(job, value) {
  const pct = Math.round(Math.max(0, Math.min(1, Number(value) || 0)) * 100);
  return h('span', { class: 'progress', 'data-job': job },
    h('span', { class: 'bar' }, h('span', {})),
    h('span', { class: 'bar-text' }, pct + '%'));
}

// Set a progress element's width and text (no inline style attribute: the CSP forbids it).
function setProgress(el, value) {
  const pct = Math.round(Math.max(0, Math.min(1, Number(value) || 0)) * 100);
  el.querySelector('.bar > span').style.width = pct + '%';
  el.querySelector('.bar-text').textContent = pct + '%';
}

// ---------------------------------------------------------------- formatting

function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '–';
  const v = Number(value);
  if (v < 10) return v.toFixed(1) + ' s';
  if (v < 120) return Math.round(v) + ' s';
  if (v < 7200) return Math.floor(v / 60) + ' min ' + Math.round(v % 60) + ' s';
  return (v / 3600).toFixed(1) + ' h';
}

// "14:03:27", with the day when it is not today.
function clock(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
}

// "3 min ago", relative to the database's clock (now, from the snapshot).
function ago(iso, now) {
  if (!iso) return '–';
  return seconds(Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000)) + ' ago';
}

function timeCell(iso, now) {
  return h('td', { title: iso || '' }, clock(iso), h('div', { class: 'muted' }, ago(iso, now)));
}

const fileName = (name) => (name === null || name === undefined ? '(no file name)' : name);

// A failure's cause: its error code (when recorded) and its message.
function cause(code, message) {
  return [code ? h('span', { class: 'code' }, code) : null, code && message ? ' ' : null, message || (code ? '' : '(no message)')];
}

// ---------------------------------------------------------------- data

class HttpError extends Error {}

// GET an API path; during a render that follows a job's end, ask for data
// taken after that event (the dashboard waits for it).
async function api(path) {
  if (state.renderAfter) path += (path.includes('?') ? '&' : '?') + 'after_event=' + encodeURIComponent(state.renderAfter);
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) {
    location.reload();
    throw new HttpError('logged out');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new HttpError(body.error || response.status + ' ' + response.statusText);
  return body;
}

function showError(error) {
  const banner = document.getElementById('banner');
  if (error) {
    banner.textContent = 'The dashboard cannot read the queue now: ' + error.message;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

// ---------------------------------------------------------------- chart

// A stacked chart of series [{label, color, values}] over the last hour's
// 61 points: areas, or bars (the minute before each point).
function stackedChart(series, height, title, bars) {
  const width = 760;
  const left = 40;
  const bottom = 18;
  const top = 8;
  const n = series.length ? series[0].values.length : 61;
  const totals = Array.from({ length: n }, (_, i) => series.reduce((a, x) => a + Number(x.values[i] || 0), 0));
  const max = 4 * niceStep(Math.max(1, ...totals) / 4);
  const x = (i) => left + (i * (width - left - 4)) / Math.max(1, n - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.append(s('line', { class: 'grid', x1: left, x2: width - 4, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: left - 6, y: y(v) + 3, 'text-anchor': 'end' }, formatCount(v)));
  }
  for (const [i, label] of [[0, '−60 min'], [15, '−45'], [30, '−30'], [45, '−15'], [n - 1, 'now']]) {
    svg.append(s('text', { class: 'axis', x: x(i), y: height - 4, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' }, label));
  }
  const base = new Array(n).fill(0);
  const step = (width - left - 4) / Math.max(1, n - 1);
  for (const serie of series) {
    const upper = base.map((b, i) => b + Number(serie.values[i] || 0));
    if (bars) {
      // the value at point i is what ended in the minute before it
      const g = s('g', { fill: serie.color, 'fill-opacity': serie.opacity || 0.85 }, s('title', {}, serie.label));
      for (let i = 1; i < n; i++) {
        if (upper[i] > base[i]) g.append(s('rect', { x: x(i) - step * 0.9, y: y(upper[i]), width: step * 0.8, height: y(base[i]) - y(upper[i]) }));
      }
      svg.append(g);
    } else {
      let d = `M${x(0)},${y(upper[0])}`;
      for (let i = 1; i < n; i++) d += `L${x(i)},${y(upper[i])}`;
      for (let i = n - 1; i >= 0; i--) d += `L${x(i)},${y(base[i])}`;
      svg.append(s('path', { d: d + 'Z', fill: serie.color, 'fill-opacity': serie.opacity || 0.85, stroke: serie.color, 'stroke-width': 0.5 },
        s('title', {}, serie.label)));
    }
    upper.forEach((v, i) => { base[i] = v; });
  }
  // one hover target per minute, its tooltip listing the values
  for (let i = 0; i < n; i++) {
    const lines = series.filter((x) => Number(x.values[i])).map((x) => `${x.label}: ${x.values[i]}`);
    svg.append(s('rect', { x: x(i) - (width - left) / n / 2, y: top, width: (width - left) / n, height: height - top - bottom, fill: 'transparent' },
      s('title', {}, `${i === n - 1 ? 'now' : (n - 1 - i) + ' min ago'}\n${lines.join('\n') || 'none'}`)));
  }
  return svg;
}

// The step of four gridlines that reach v: 1, 1.5, 2, 2.5 or 5 times a power of
// ten, and a whole number (the values are counts).
function niceStep(v) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1))));
  for (const m of [1, 1.5, 2, 2.5, 5, 10]) if (m * p >= v && (Number.isInteger(m) || p >= 10)) return m * p;
  return 10 * p;
}

function formatCount(v) {
  if (v >= 1000) return String(Math.round(v / 100) / 10) + 'k';
  return String(Math.round(v * 10) / 10);
}

function legend(series) {
  return h('div', { class: 'legend' }, series.map((x) => h('span', {}, h('i', { class: 'swatch', 'data-color': x.color, 'data-opacity': x.opacity || 0.85 }), x.label)));
}

// Swatches take their color from data attributes (no inline style in the markup).
function paintSwatches(root) {
  for (const el of root.querySelectorAll('i.swatch')) {
    el.style.background = el.dataset.color;
    el.style.opacity = el.dataset.opacity;
  }
}

// ---------------------------------------------------------------- overview

function countOf(summary, status, type) {
  return summary.counts.filter((c) => c.status === status && (!type || c.job_type === type))
    .reduce((a, c) => a + Number(c.jobs), 0);
}

function lastHour(summary, status, type) {
  return summary.last_hour.filter((c) => c.status === status && (!type || c.job_type === type))
    .reduce((a, c) => a + Number(c.jobs), 0);
}

function card(label, value, sub, bad) {
  return h('div', { class: 'card' + (bad ? ' bad' : '') },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub' }, sub) : null);
}

function overviewCards(summary) {
  const completed = lastHour(summary, 'completed');
  const failed = lastHour(summary, 'failed');
  const ended = completed + failed;
  const rate = ended ? (100 * failed) / ended : 0;
  const oldest = summary.oldest_pending;
  return h('div', { class: 'cards' },
    card('Waiting', countOf(summary, 'pending'), 'pending jobs now'),
    card('Running', countOf(summary, 'running'), 'jobs being worked on'),
    card('Done, last hour', completed, (completed / 60).toFixed(1) + ' per minute'),
    card('Failed, last hour', failed, ended ? rate.toFixed(1) + '% of ended jobs' : 'no job ended', failed > 0),
    card('Oldest waiting', oldest ? seconds(oldest.waiting_seconds) : '–',
      oldest ? h('a', { href: jobHref(oldest.job_id) }, fileName(oldest.filename)) : 'nothing waits'));
}

function depthChart(summary) {
  const series = [];
  const byType = new Map(summary.history.map((x) => [x.job_type, x]));
  const types = [...TYPES.filter((t) => byType.has(t)), ...[...byType.keys()].filter((t) => !TYPES.includes(t))];
  for (const status of ['running', 'pending']) {
    for (const type of types) {
      const values = byType.get(type)[status];
      if (values.some((v) => Number(v) > 0)) {
        series.push({ label: `${type} ${status}`, color: TYPE_COLORS[type] || '#4a5568', opacity: status === 'running' ? 0.9 : 0.4, values });
      }
    }
  }
  return h('section', { class: 'panel chart', id: 'depth' },
    h('h2', {}, 'Queue depth, last hour (pending pale, running dark)'),
    series.length ? [stackedChart(series, 220, 'queue depth'), legend(series)] : h('p', { class: 'empty' }, 'Nothing was queued in the last hour.'));
}

function endedChart(summary) {
  const colors = { completed: '#2f855a', failed: '#c53030', cancelled: '#a0aec0' };
  const series = ['completed', 'failed', 'cancelled']
    .map((status) => summary.ended_per_minute.find((x) => x.status === status))
    .filter((x) => x && x.jobs.some((v) => Number(v) > 0))
    .map((x) => ({ label: x.status, color: colors[x.status], values: [0, ...x.jobs] }));
  return h('section', { class: 'panel chart', id: 'ended' },
    h('h2', {}, 'Jobs ended per minute'),
    series.length ? [stackedChart(series, 220, 'jobs ended per minute', true), legend(series)] : h('p', { class: 'empty' }, 'No job ended in the last hour.'));
}

function durationTable(summary) {
  const types = [...new Set(summary.last_hour.map((x) => x.job_type))];
  const rows = types.map((type) => {
    const done = summary.last_hour.find((x) => x.job_type === type && x.status === 'completed');
    return h('tr', {}, h('td', {}, type),
      h('td', { class: 'num' }, lastHour(summary, 'completed', type)),
      h('td', { class: 'num' }, lastHour(summary, 'failed', type)),
      h('td', { class: 'num' }, done ? seconds(done.p50) : '–'),
      h('td', { class: 'num' }, done ? seconds(done.p95) : '–'));
  });
  return h('section', { class: 'panel', id: 'durations' }, h('h2', {}, 'By type, last hour'),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'type'), h('th', { class: 'num' }, 'done'),
      h('th', { class: 'num' }, 'failed'), h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p95'))), h('tbody', {}, rows))
      : h('p', { class: 'empty' }, 'No job ended in the last hour.'));
}

// Why jobs and attempts failed in the last hour, by error code.
function causesTable(summary) {
  const codes = new Map();
  for (const f of summary.failed_last_hour || []) codes.set(f.error_code || '', { jobs: Number(f.jobs), attempts: 0 });
  for (const a of summary.attempt_errors || []) {
    if (!Number(a.last_hour)) continue;
    const c = codes.get(a.error_code || '') || { jobs: 0, attempts: 0 };
    c.attempts += Number(a.last_hour);
    codes.set(a.error_code || '', c);
  }
  const rows = [...codes.entries()].sort((x, y) => y[1].attempts - x[1].attempts || y[1].jobs - x[1].jobs)
    .map(([code, c]) => h('tr', {}, h('td', {}, code ? h('span', { class: 'code' }, code) : '(none recorded)'),
      h('td', { class: 'num' }, c.attempts), h('td', { class: 'num' }, c.jobs)));
  return h('section', { class: 'panel', id: 'causes' }, h('h2', {}, 'Causes, last hour'),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'error code'), h('th', { class: 'num' }, 'failed attempts'),
      h('th', { class: 'num' }, 'failed jobs'))), h('tbody', {}, rows))
      : h('p', { class: 'empty' }, 'Nothing failed in the last hour.'));
}

function workersTable(workers, now) {
  const rows = workers.map((w) => h('tr', {},
    h('td', {}, w.name, h('div', { class: 'muted' }, w.kind)),
    h('td', {}, w.host || 'database server', h('div', { class: 'muted' }, 'pid ' + w.pid)),
    h('td', {}, badge(w.state === 'running' ? 'running' : 'idle'), w.stage ? h('div', { class: 'muted' }, w.stage) : null),
    h('td', { class: 'file' }, w.job_id ? [h('a', { href: jobHref(w.job_id) }, fileName(w.filename)), h('div', { class: 'muted' }, w.job_type + (w.attempt ? ' · attempt ' + w.attempt : ''))] : '–'),
    h('td', {}, w.job_id ? progressBar(w.job_id) : '–'),
    timeCell(w.last_heartbeat, now)));
  const table = h('table', { id: 'workers-table' }, h('thead', {}, h('tr', {}, ['worker', 'host', 'state', 'job', 'progress', 'last heartbeat'].map((t) => h('th', {}, t)))), h('tbody', {}, rows));
  workers.forEach((w, i) => {
    const el = rows[i].querySelector('.progress');
    if (el) setProgress(el, w.progress);
  });
  return h('section', { class: 'panel', id: 'workers' }, h('h2', {}, 'Workers'),
    workers.length ? table : h('p', { class: 'empty' }, 'No worker is running: vproxy.workers is empty.'));
}

function failuresTable(summary) {
  const rows = summary.recent_failures.map((f) => h('tr', {},
    timeCell(f.completed_at, summary.generated_at),
    h('td', { class: 'file' }, h('a', { href: jobHref(f.job_id) }, fileName(f.filename)), h('div', { class: 'muted' }, f.mall_id || '')),
    h('td', {}, f.job_type, h('div', { class: 'muted' }, `attempts ${f.attempts}/${f.max_attempts}`)),
    h('td', { class: 'cause' }, cause(f.error_code, f.error_message))));
  return h('section', { class: 'panel', id: 'failures' }, h('h2', {}, 'Recent failures'),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, ['when', 'file', 'type', 'cause'].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
      : h('p', { class: 'empty' }, 'No failed job.'));
}

async function renderOverview(main) {
  const [summary, workers] = await Promise.all([api('/api/summary'), api('/api/workers')]);
  const view = h('div', { id: 'overview' },
    overviewCards(summary),
    h('div', { class: 'grid2 even' }, depthChart(summary), endedChart(summary)),
    h('div', { class: 'grid2 narrow-wide' }, h('div', { class: 'stack' }, durationTable(summary), causesTable(summary)),
      workersTable(workers, summary.generated_at)),
    failuresTable(summary));
  paintSwatches(view);
  main.replaceChildren(view);
  state.knownJobs = new Set(workers.map((w) => w.job_id).filter(Boolean));
}

// ---------------------------------------------------------------- job list

function listQuery() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  return { status: q.get('status') || '', type: q.get('type') || '', tenant: q.get('tenant') || '', before: q.get('before') || '' };
}

function listHash(q) {
  const p = new URLSearchParams();
  for (const k of ['status', 'type', 'tenant', 'before']) if (q[k]) p.set(k, q[k]);
  const text = p.toString();
  return '#/jobs' + (text ? '?' + text : '');
}

function filtersForm(q) {
  const select = (name, values) => h('select', { name },
    h('option', { value: '' }, 'any'), values.map((v) => h('option', { value: v, selected: v === q[name] ? 'selected' : null }, v)));
  const form = h('form', { class: 'filters', id: 'filters' },
    h('label', {}, 'status', select('status', STATUSES)),
    h('label', {}, 'type', select('type', TYPES)),
    h('label', {}, 'tenant (mall_id)', h('input', { name: 'tenant', value: q.tenant, placeholder: 'any', size: 16 })),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    location.hash = listHash({ status: data.get('status'), type: data.get('type'), tenant: data.get('tenant').trim(), before: '' });
  });
  return form;
}

async function renderJobs(main) {
  const q = listQuery();
  const params = new URLSearchParams();
  for (const k of ['status', 'type', 'tenant', 'before']) if (q[k]) params.set(k, q[k]);
  const page = await api('/api/jobs?' + params.toString());
  const rows = page.jobs.map((j) => h('tr', {},
    timeCell(j.created_at, page.generated_at),
    h('td', { class: 'file' }, h('a', { href: jobHref(j.id) }, fileName(j.filename)), h('div', { class: 'muted' }, j.mall_id || '')),
    h('td', {}, j.job_type, j.parent_job_id ? h('div', {}, h('a', { href: jobHref(j.parent_job_id), class: 'muted' }, 'of its parent')) : null),
    h('td', {}, badge(j.status), j.status === 'running' ? h('div', {}, progressBar(j.id)) : null),
    h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
    h('td', { class: 'num' }, j.started_at && j.completed_at ? seconds((Date.parse(j.completed_at) - Date.parse(j.started_at)) / 1000) : '–'),
    h('td', { class: 'cause' }, j.status === 'failed' || j.status === 'cancelled' ? cause(j.error_code, j.error_message) : '')));
  const last = page.jobs[page.jobs.length - 1];
  const view = h('div', { id: 'jobs' },
    h('h1', {}, 'Jobs'),
    filtersForm(q),
    h('section', { class: 'panel' },
      rows.length ? h('table', { id: 'jobs-table' }, h('thead', {}, h('tr', {}, ['created', 'file', 'type', 'status', h('span', { class: 'num' }, 'attempts'), 'took', 'cause'].map((t) => h('th', {}, t)))), h('tbody', {}, rows))
        : h('p', { class: 'empty' }, 'No job matches.'),
      h('div', { class: 'pager' },
        q.before ? h('a', { href: listHash({ ...q, before: '' }) }, '« newest') : null,
        page.more && last ? h('a', { href: listHash({ ...q, before: last.cursor_us + '_' + last.id }), id: 'older' }, 'older »') : null)));
  for (const j of page.jobs) {
    const el = view.querySelector(`.progress[data-job="${j.id}"]`);
    if (el) setProgress(el, j.progress);
  }
  main.replaceChildren(view);
}

// ---------------------------------------------------------------- job page

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter((p) => p).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// The metadata of result_data: one column per part (original, proxy,
// thumbnail), the documented fields first.
function metadataTable(metadata) {
  if (!metadata || typeof metadata !== 'object') return null;
  const first = ['width', 'height', 'fps', 'duration_seconds', 'codec', 'bitrate', 'file_size_bytes', 'timestamp_seconds'];
  const parts = ['original', 'proxy', 'thumbnail'].filter((p) => metadata[p]).concat(Object.keys(metadata).filter((p) => !['original', 'proxy', 'thumbnail'].includes(p)));
  const all = [...new Set(parts.flatMap((p) => Object.keys(metadata[p] || {})))];
  const fields = first.filter((f) => all.includes(f)).concat(all.filter((f) => !first.includes(f)).sort());
  return h('table', { id: 'metadata' }, h('thead', {}, h('tr', {}, h('th', {}, ''), parts.map((p) => h('th', {}, p)))),
    h('tbody', {}, fields.map((f) => h('tr', {}, h('th', {}, f), parts.map((p) => h('td', {}, formatValue((metadata[p] || {})[f])))))));
}

function formatValue(v) {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function attemptsSection(job) {
  const errors = Array.isArray(job.attempt_errors) ? job.attempt_errors : null;
  const rows = errors ? errors.map((a) => h('tr', {}, h('td', { class: 'num' }, a.attempt), timeCell(a.at, job.completed_at || a.at),
    h('td', {}, a.code ? h('span', { class: 'code' }, a.code) : ''), h('td', { class: 'cause' }, a.message || ''),
    h('td', { class: 'mono' }, a.worker || ''))) : [];
  return h('section', { class: 'panel', id: 'attempts' }, h('h2', {}, `Attempts (${job.attempts} of ${job.max_attempts})`),
    rows.length ? h('table', {}, h('thead', {}, h('tr', {}, ['#', 'when', 'code', 'error', 'worker'].map((t) => h('th', {}, t)))), h('tbody', {}, rows)) : null,
    job.error_message || job.error_code ? h('p', {}, 'Last error: ', h('span', { class: 'error-text', id: 'job-error' }, cause(job.error_code, job.error_message))) : null,
    !rows.length && !job.error_message ? h('p', { class: 'empty' }, job.attempts ? 'No attempt failed.' : 'Not tried yet.') : null);
}

// The media of the page: the section already shown when the job and its
// files are the same (a refresh must not restart a playing video).
function mediaSection(data) {
  const key = [data.job.id, (data.video || {}).proxy_path, (data.video || {}).thumbnail_path].join('\n');
  const shown = document.getElementById('media');
  if (shown && shown.dataset.key === key) return shown;
  const media = data.media || {};
  const figures = [];
  if (media.thumbnail) figures.push(h('figure', {}, h('img', { src: media.thumbnail, alt: 'thumbnail', id: 'thumbnail' }), h('figcaption', {}, 'thumbnail')));
  if (media.proxy) figures.push(h('figure', {}, h('video', { src: media.proxy, controls: '', preload: 'metadata', id: 'proxy', muted: '' }), h('figcaption', {}, 'proxy')));
  const section = h('section', { class: 'panel', id: 'media' }, h('h2', {}, 'Thumbnail and proxy'),
    figures.length ? h('div', { class: 'media' }, figures)
      : h('p', { class: 'empty' }, media.note || 'Not made yet.'));
  section.dataset.key = key;
  return section;
}

// The segments of a split proxy, in the order the dashboard gives them.
function segmentsTable(data) {
  const segments = data.segments || [];
  if (!segments.length) return null;
  const done = segments.filter((x) => x.status === 'completed').length;
  const rows = segments.map((x, i) => h('tr', {},
    h('td', { class: 'num' }, i + 1),
    h('td', {}, h('a', { href: jobHref(x.id) }, badge(x.status))),
    h('td', {}, x.status === 'running' ? progressBar(x.id) : ''),
    h('td', { class: 'mono' }, JSON.stringify(x.params)),
    h('td', { class: 'num' }, `${x.attempts}/${x.max_attempts}`),
    h('td', { class: 'num' }, x.started_at && x.completed_at ? seconds((Date.parse(x.completed_at) - Date.parse(x.started_at)) / 1000) : '–'),
    h('td', { class: 'cause' }, x.status === 'failed' || x.status === 'cancelled' ? cause(x.error_code, x.error_message) : '')));
  const section = h('section', { class: 'panel', id: 'segments' }, h('h2', {}, `Segments (${done} of ${segments.length} done)`),
    h('table', {}, h('thead', {}, h('tr', {}, ['#', 'status', 'progress', 'part', 'attempts', 'took', 'cause'].map((t) => h('th', {}, t)))), h('tbody', {}, rows)));
  segments.forEach((x, i) => {
    const el = rows[i].querySelector('.progress');
    if (el) setProgress(el, x.progress);
  });
  return section;
}

function videoJobsTable(data) {
  const rows = (data.video_jobs || []).map((o) => h('tr', {},
    timeCell(o.created_at, data.generated_at),
    h('td', {}, o.id === data.job.id ? h('strong', {}, o.job_type) : h('a', { href: jobHref(o.id) }, o.job_type)),
    h('td', {}, badge(o.status)), h('td', { class: 'num' }, o.attempts),
    h('td', { class: 'cause' }, o.status === 'failed' || o.status === 'cancelled' ? cause(o.error_code, o.error_message) : '')));
  return rows.length > 1 ? h('section', { class: 'panel', id: 'video-jobs' }, h('h2', {}, 'Jobs of this video'),
    h('table', {}, h('thead', {}, h('tr', {}, ['created', 'type', 'status', 'attempts', 'error'].map((t) => h('th', {}, t)))), h('tbody', {}, rows))) : null;
}

async function renderJob(main, id) {
  const data = await api('/api/job/' + encodeURIComponent(id));
  const job = data.job;
  const video = data.video || {};
  const now = data.generated_at;
  const took = job.started_at && job.completed_at ? seconds((Date.parse(job.completed_at) - Date.parse(job.started_at)) / 1000) : null;
  const result = job.result_data || {};
  const view = h('div', { id: 'job', 'data-job': job.id },
    h('h1', {}, h('span', { id: 'job-file' }, fileName(video.filename)), ' ', badge(job.status)),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, 'Job'), facts([
        ['job', h('span', { class: 'mono' }, job.id)],
        ['type', job.job_type],
        ['status', [badge(job.status), job.status === 'running' ? [' ', progressBar(job.id)] : null]],
        ['tenant (mall_id)', video.mall_id || '–'],
        ['video', h('span', { class: 'mono' }, job.video_id || (result.video_id ? result.video_id + ' (deleted)' : '–'))],
        ['original', video.original_path ? h('span', { class: 'mono' }, video.original_path) : '–'],
        ['priority', job.priority],
        ['created', clock(job.created_at)],
        ['runs from', clock(job.run_at)],
        ['started', job.started_at ? clock(job.started_at) : '–'],
        ['ended', job.completed_at ? clock(job.completed_at) + (took ? ' (took ' + took + ')' : '') : '–'],
        job.lease_holder && job.status === 'running' ? ['held by', h('span', { class: 'mono' }, job.lease_holder)] : null,
        job.parent_job_id ? ['part of', h('a', { href: jobHref(job.parent_job_id) }, job.parent_job_id)] : null,
        job.error_code ? ['error code', job.error_code] : null,
      ])),
      h('section', { class: 'panel' }, h('h2', {}, 'Parameters'), h('pre', { class: 'json', id: 'params' }, JSON.stringify(job.params, null, 2)))),
    attemptsSection(job),
    mediaSection(data),
    segmentsTable(data),
    result.metadata ? h('section', { class: 'panel' }, h('h2', {}, 'Metadata'), metadataTable(result.metadata)) : null,
    videoJobsTable(data));
  const bar = view.querySelector('.progress');
  if (bar) setProgress(bar, job.progress);
  main.replaceChildren(view);
  state.pageVideo = job.video_id;
}

// ---------------------------------------------------------------- routing and live updates

const state = { knownJobs: new Set(), pageVideo: null, afterEvent: null, renderAfter: null, timer: null, rendering: false, again: false };

function route() {
  const path = location.hash.replace(/^#/, '').split('?')[0] || '/';
  if (path.startsWith('/job/')) return { name: 'job', id: decodeURIComponent(path.slice(5)) };
  if (path === '/jobs') return { name: 'jobs' };
  return { name: 'overview' };
}

async function render() {
  if (state.rendering) {
    state.again = true;
    return;
  }
  state.rendering = true;
  state.renderAfter = state.afterEvent;
  state.afterEvent = null;
  const main = document.getElementById('main');
  const r = route();
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('current', a.dataset.nav === (r.name === 'job' ? 'jobs' : r.name));
  try {
    if (r.name === 'job') await renderJob(main, r.id);
    else if (r.name === 'jobs') await renderJobs(main);
    else await renderOverview(main);
    showError(null);
  } catch (error) {
    if (!(error instanceof HttpError && error.message === 'logged out')) showError(error);
  } finally {
    state.rendering = false;
    state.renderAfter = null;
    if (state.again) {
      state.again = false;
      render();
    }
  }
}

// Render again soon; events that come together cause one refresh.
function refreshSoon(delay) {
  if (state.timer) return;
  state.timer = setTimeout(() => {
    state.timer = null;
    render();
  }, delay);
}

function onJobEnd(event) {
  let payload;
  try {
    payload = JSON.parse(event.data);
  } catch (e) {
    return;
  }
  const r = route();
  if (r.name !== 'job' || r.id === payload.job_id || (payload.video_id && payload.video_id === state.pageVideo)) {
    state.afterEvent = event.lastEventId;
    refreshSoon(100);
  }
}

function onProgress(event) {
  let p;
  try {
    p = JSON.parse(event.data);
  } catch (e) {
    return;
  }
  let shown = false;
  for (const el of document.querySelectorAll(`.progress[data-job="${CSS.escape(p.job_id)}"]`)) {
    setProgress(el, p.progress);
    shown = true;
  }
  // a job that started since the last render: show it in the workers table
  if (!shown && route().name === 'overview' && !state.knownJobs.has(p.job_id)) refreshSoon(300);
}

function connectEvents() {
  const live = document.getElementById('live');
  const source = new EventSource('/events');
  source.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  source.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('message', onJobEnd);
  source.addEventListener('progress', onProgress);
  source.addEventListener('resync', () => refreshSoon(100));
}

async function start() {
  try {
    const session = await api('/api/session');
    document.getElementById('logout').hidden = !session.auth;
    document.getElementById('version').textContent = session.version;
  } catch (error) {
    showError(error);
  }
  window.addEventListener('hashchange', () => render());
  connectEvents();
  await render();
  // ages and waiting times move on even when no job ends
  setInterval(() => { if (!document.hidden) refreshSoon(0); }, 15000);
}

start();
