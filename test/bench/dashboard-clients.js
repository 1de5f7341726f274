// The clients of test/bench/dashboard: N browsers' worth of load on one
// vproxy-dashboard, from one Node.js process (no dependency).  Each browser
// holds an /events stream and, about once a second, loads what the page
// loads (the page, /api/summary, /api/workers) and what a Prometheus
// scrape loads (/metrics), and now and then a page of the job list and a
// job, and a static file (the baseline: what the machine itself adds to a
// request that needs no snapshot).  Prints one JSON object: latency percentiles by request kind (ms),
// and how late the events arrived (payloads carrying "sent_at", epoch ms).
//
//   node dashboard-clients.js URL TOKEN BROWSERS SECONDS JOB_ID
'use strict';

const http = require('http');

const [url, token, browsers, seconds, jobId] = process.argv.slice(2);
const base = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(browsers) * 2 });
const headers = { Authorization: 'Bearer ' + token };
const latency = {};
const failures = {};
const eventDelays = [];
let eventsReceived = 0;
let stopping = false;

function record(kind, ms, ok) {
  (latency[kind] = latency[kind] || []).push(ms);
  if (!ok) failures[kind] = (failures[kind] || 0) + 1;
}

// One GET, timed to the last byte of the body.
function get(kind, path) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const request = http.get({ host: base.hostname, port: base.port, path, headers, agent }, (response) => {
      response.on('data', () => {});
      response.on('end', () => {
        record(kind, Number(process.hrtime.bigint() - start) / 1e6, response.statusCode === 200);
        resolve();
      });
    });
    request.on('error', () => {
      record(kind, Number(process.hrtime.bigint() - start) / 1e6, false);
      resolve();
    });
  });
}

// An /events stream: the delay of every event whose payload says when it was sent.
function listen() {
  const request = http.get({ host: base.hostname, port: base.port, path: '/events', headers: { ...headers, Accept: 'text/event-stream' } }, (response) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => {
      const now = Date.now();
      text += chunk;
      let end;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const frame = text.slice(0, end);
        text = text.slice(end + 2);
        const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data || /^event: /m.test(frame)) continue;
        eventsReceived++;
        try {
          const sent = JSON.parse(data).sent_at;
          if (sent) eventDelays.push(now - sent);
        } catch (e) { /* not ours */ }
      }
    });
  });
  request.on('error', () => { if (!stopping) failures.events = (failures.events || 0) + 1; });
  return request;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function browser(i) {
  await sleep(Math.random() * 1000);
  let round = 0;
  while (!stopping) {
    const started = Date.now();
    await Promise.all([get('page', '/'), get('summary', '/api/summary'), get('workers', '/api/workers')]);
    // the baseline: a file that needs no token and no snapshot
    await get('static', '/favicon.svg');
    await get('metrics', '/metrics');
    if (round % 5 === i % 5) {
      await get('jobs', '/api/jobs?status=pending');
      await get('job', '/api/job/' + jobId);
    }
    round++;
    await sleep(Math.max(0, 1000 - (Date.now() - started)));
  }
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] * 10) / 10;
}

async function main() {
  const streams = Array.from({ length: Number(browsers) }, () => listen());
  const runs = Array.from({ length: Number(browsers) }, (_, i) => browser(i));
  await sleep(Number(seconds) * 1000);
  stopping = true;
  await Promise.all(runs);
  streams.forEach((s) => s.destroy());
  const out = { requests: {}, events: {} };
  for (const [kind, values] of Object.entries(latency)) {
    out.requests[kind] = { count: values.length, failed: failures[kind] || 0, p50: percentile(values, 50), p99: percentile(values, 99), max: percentile(values, 100) };
  }
  out.events = { received: eventsReceived, timed: eventDelays.length, p50: percentile(eventDelays, 50), p99: percentile(eventDelays, 99), max: percentile(eventDelays, 100), failed: failures.events || 0 };
  process.stdout.write(JSON.stringify(out) + '\n');
  agent.destroy();
}

main();
