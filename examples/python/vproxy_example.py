#!/usr/bin/python3
"""The life of a video with vproxy, from Python (psycopg 3).

    vproxy_example.py --dsn "dbname=app" --file clip.mov [--mall mall-7]

Inserts a video, uploads the file straight to the storage through a
presigned PUT URL, queues the proxy job, waits for its NOTIFY, prints the
presigned proxy and thumbnail URLs (and checks the proxy fetched through its
URL against the job's result), then deletes the video with its files and
waits for that NOTIFY too.  Prints one JSON object per step.
"""

import argparse
import hashlib
import json
import os
import select
import shutil
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import psycopg


class StepFailed(Exception):
    """A step that did not do what it should: the example stops, exit 1."""


def put(url, path):
    """Upload a file to a presigned PUT URL (or copy it to a file:// path:
    group-writable, for workers that share this user's group, see README)."""
    if url.startswith('file://'):
        target = urllib.request.url2pathname(urlsplit(url).path)
        previous = os.umask(0o002)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
        finally:
            os.umask(previous)
        return
    with open(path, 'rb') as f:
        request = urllib.request.Request(url, data=f.read(), method='PUT')
    with urllib.request.urlopen(request) as response:
        if response.status != 200:
            raise StepFailed(f'upload answered {response.status}')


def get(url):
    """The bytes behind a presigned GET URL (or a file:// path)."""
    if url.startswith('file://'):
        with open(urllib.request.url2pathname(urlsplit(url).path), 'rb') as f:
            return f.read()
    with urllib.request.urlopen(url) as response:
        return response.read()


def wait_for(conn, heard, job_id, timeout):
    """Wait for the NOTIFY that ends a job; its payload.  (psycopg 3.1 has no
    timeout on notifies(): wait for the socket, then let a no-op query hand
    the notifications to the handler that fills `heard`.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for payload in heard:
            if payload['job_id'] == str(job_id):
                return payload
        select.select([conn.fileno()], [], [], 1.0)
        conn.execute('SELECT 1')
    raise TimeoutError(f'no NOTIFY for job {job_id} within {timeout} s')


def say(**fields):
    print(json.dumps(fields, default=str), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dsn', default='')
    parser.add_argument('--file', required=True)
    parser.add_argument('--mall', default='example-mall')
    parser.add_argument('--timeout', type=float, default=300)
    args = parser.parse_args()

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        heard_so_far = []
        conn.add_notify_handler(lambda n: heard_so_far.append(json.loads(n.payload)))
        conn.execute('LISTEN vproxy_jobs')
        name = os.path.basename(args.file)
        video_id = conn.execute(
            """INSERT INTO vproxy.videos (mall_id, filename, original_path, file_size_bytes)
               VALUES (%s, %s, %s, %s) RETURNING id""",
            (args.mall, name, f'uploads/{args.mall}/{name}', os.path.getsize(args.file))).fetchone()[0]
        say(step='inserted', video_id=video_id)

        upload_url = conn.execute('SELECT vproxy.vproxy_upload_url(%s, %s)',
                                  (video_id, '15 minutes')).fetchone()[0]
        put(upload_url, args.file)
        say(step='uploaded', host=urlsplit(upload_url).netloc)

        job_id = conn.execute('SELECT vproxy.vproxy_enqueue(%s)', (video_id,)).fetchone()[0]
        say(step='enqueued', job_id=job_id)
        heard = wait_for(conn, heard_so_far, job_id, args.timeout)
        say(step='notified', payload=heard)
        if heard['status'] != 'completed':
            status = conn.execute('SELECT vproxy.vproxy_job_status(%s)', (job_id,)).fetchone()[0]
            raise StepFailed(f'the proxy job ended {heard["status"]}: {status["error_message"]}')

        proxy_url, thumbnail_url = conn.execute(
            "SELECT vproxy.vproxy_url(%s, 'proxy'), vproxy.vproxy_url(%s, 'thumbnail')",
            (video_id, video_id)).fetchone()
        say(step='urls', proxy_url=proxy_url, thumbnail_url=thumbnail_url)
        result = conn.execute('SELECT vproxy.vproxy_job_status(%s)', (job_id,)).fetchone()[0]['result_data']
        proxy = get(proxy_url)
        proxy_sha256 = hashlib.sha256(proxy).hexdigest()
        say(step='fetched', proxy_bytes=len(proxy), proxy_sha256=proxy_sha256,
            result_sha256=result['metadata']['proxy']['sha256'],
            thumbnail_bytes=len(get(thumbnail_url)))
        if proxy_sha256 != result['metadata']['proxy']['sha256']:
            raise StepFailed('the proxy fetched is not the one the job made')

        deletion_id = conn.execute('SELECT vproxy.vproxy_delete_video(%s)', (video_id,)).fetchone()[0]
        say(step='deleting', job_id=deletion_id)
        heard = wait_for(conn, heard_so_far, deletion_id, args.timeout)
        if heard['status'] != 'completed':
            # the files may still be there and the video stays 'deleting'
            # (on file:// storage: see the ownership rule in examples/README.md)
            status = conn.execute('SELECT vproxy.vproxy_job_status(%s)', (deletion_id,)).fetchone()[0]
            say(step='delete_failed', payload=heard, error=status['error_message'])
            raise StepFailed(f'the deletion ended {heard["status"]}: {status["error_message"]}')
        say(step='deleted', payload=heard)
        return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (StepFailed, TimeoutError, OSError, psycopg.Error) as error:
        print(f'vproxy_example: {error}', file=sys.stderr)
        sys.exit(1)
