#!/usr/bin/env node
// The life of a video with vproxy, from Node.js (node-postgres).
//
//   node vproxy_example.js --file clip.mov [--mall mall-7]
//   (the connection comes from PGHOST, PGPORT, PGDATABASE, PGUSER...)
//
// Inserts a video, uploads the file straight to the storage through a
// presigned PUT URL, queues the proxy job, waits for its NOTIFY, prints the
// presigned proxy and thumbnail URLs (and checks the proxy fetched through
// its URL against the job's result), then deletes the video with its files
// and waits for that NOTIFY too.  Prints one JSON object per step.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { fileURLToPath } = require('node:url');
const { Client } = require('pg');

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

function say(fields) {
  console.log(JSON.stringify(fields));
}

// Upload a file to a presigned PUT URL (or copy it to a file:// path:
// group-writable, for workers that share this user's group, see README).
async function put(url, file) {
  if (url.startsWith('file://')) {
    const target = fileURLToPath(url);
    const previous = process.umask(0o002);
    try {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(file, target);
    } finally {
      process.umask(previous);
    }
    return;
  }
  const response = await fetch(url, { method: 'PUT', body: fs.readFileSync(file) });
  if (response.status !== 200) throw new Error(`upload answered ${response.status}`);
}

// The bytes behind a presigned GET URL (or a file:// path).
async function get(url) {
  if (url.startsWith('file://')) return fs.readFileSync(fileURLToPath(url));
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`download answered ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

// Every vproxy_jobs payload heard on the connection, from LISTEN on (a
// NOTIFY may arrive in the same packet as the answer to the enqueue).
function collectNotifications(client) {
  const heard = [];
  const waiters = [];
  client.on('notification', (message) => {
    if (message.channel !== 'vproxy_jobs') return;
    heard.push(JSON.parse(message.payload));
    waiters.forEach((wake) => wake());
  });
  // The NOTIFY that ends a job: its payload.
  return function waitFor(jobId, seconds) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const payload = heard.find((p) => p.job_id === jobId);
        if (!payload) return false;
        clearTimeout(timer);
        waiters.splice(waiters.indexOf(check), 1);
        resolve(payload);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error(`no NOTIFY for job ${jobId} within ${seconds} s`));
      }, seconds * 1000);
      waiters.push(check);
      check();
    });
  };
}

async function main() {
  const file = option('file');
  const mall = option('mall', 'example-mall');
  const timeout = Number(option('timeout', '300'));
  if (!file) throw new Error('usage: vproxy_example.js --file FILE [--mall MALL]');
  const client = new Client();
  await client.connect();
  try {
    const waitFor = collectNotifications(client);
    await client.query('LISTEN vproxy_jobs');
    const name = path.basename(file);
    const { rows: [video] } = await client.query(
      `INSERT INTO vproxy.videos (mall_id, filename, original_path, file_size_bytes)
       VALUES ($1, $2, $3, $4) RETURNING id`,
      [mall, name, `uploads/${mall}/${name}`, fs.statSync(file).size]);
    say({ step: 'inserted', video_id: video.id });

    const { rows: [upload] } = await client.query(
      'SELECT vproxy.vproxy_upload_url($1, $2) AS url', [video.id, '15 minutes']);
    await put(upload.url, file);
    say({ step: 'uploaded' });

    const { rows: [job] } = await client.query('SELECT vproxy.vproxy_enqueue($1) AS id', [video.id]);
    say({ step: 'enqueued', job_id: job.id });
    let heard = await waitFor(job.id, timeout);
    say({ step: 'notified', payload: heard });
    if (heard.status !== 'completed') {
      const { rows: [status] } = await client.query(
        'SELECT vproxy.vproxy_job_status($1) AS s', [job.id]);
      throw new Error(`the proxy job ended ${heard.status}: ${status.s.error_message}`);
    }

    const { rows: [urls] } = await client.query(
      `SELECT vproxy.vproxy_url($1, 'proxy') AS proxy_url,
              vproxy.vproxy_url($1, 'thumbnail') AS thumbnail_url,
              vproxy.vproxy_job_status($2) -> 'result_data' AS result`, [video.id, job.id]);
    say({ step: 'urls', proxy_url: urls.proxy_url, thumbnail_url: urls.thumbnail_url });
    const proxy = await get(urls.proxy_url);
    const thumbnail = await get(urls.thumbnail_url);
    const proxySha256 = crypto.createHash('sha256').update(proxy).digest('hex');
    say({
      step: 'fetched', proxy_bytes: proxy.length, proxy_sha256: proxySha256,
      result_sha256: urls.result.metadata.proxy.sha256, thumbnail_bytes: thumbnail.length,
    });
    if (proxySha256 !== urls.result.metadata.proxy.sha256) {
      throw new Error('the proxy fetched is not the one the job made');
    }

    const { rows: [deletion] } = await client.query(
      'SELECT vproxy.vproxy_delete_video($1) AS id', [video.id]);
    say({ step: 'deleting', job_id: deletion.id });
    heard = await waitFor(deletion.id, timeout);
    if (heard.status !== 'completed') {
      // the files may still be there and the video stays 'deleting'
      // (on file:// storage: see the ownership rule in examples/README.md)
      const { rows: [status] } = await client.query(
        'SELECT vproxy.vproxy_job_status($1) AS s', [deletion.id]);
      say({ step: 'delete_failed', payload: heard, error: status.s.error_message });
      throw new Error(`the deletion ended ${heard.status}: ${status.s.error_message}`);
    }
    say({ step: 'deleted', payload: heard });
  } finally {
    await client.end();
  }
}

main().catch((error) => {
  console.error(`vproxy_example: ${error.message}`);
  process.exitCode = 1;
});
