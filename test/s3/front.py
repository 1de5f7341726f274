#!/usr/bin/python3
"""The test S3 server: s3rver (npm, pinned in package-lock.json) behind this
front, which every test request goes through.

The front
  - checks the SigV4 signature of each request as it arrived (header signing
    and presigned URLs) with botocore and the test credentials, and the body
    against its signed SHA-256, answering S3's errors (SignatureDoesNotMatch,
    InvalidAccessKeyId, XAmzContentSHA256Mismatch, ...) when they are wrong;
  - forwards verified requests to s3rver without their credentials, streaming
    bodies both ways (a PutObject body is first spooled and checked, so that a
    failed upload never replaces the object, as on S3);
  - answers ListMultipartUploads and AbortMultipartUpload, which s3rver lacks;
  - takes AWS's virtual-hosted requests too (Host: bucket.s3.region.amazonaws.com,
    reached with curl --connect-to), forwarded path-style;
  - injects faults on demand (see faults.py) and records every request.

Control endpoint (no credentials; not a valid bucket name, so no clash):
  POST   /__front__/faults       add rules (a JSON object or a list)
  DELETE /__front__/faults       remove all rules
  GET    /__front__/requests     the requests seen so far, JSON
  DELETE /__front__/requests     forget them
  PUT    /__front__/buckets/NAME create a bucket

Usage: front.py --data DIR --port-file FILE [--region R] [--tls-cert PEM --tls-key PEM]
with the credentials in S3_FRONT_ACCESS_KEY_ID and S3_FRONT_SECRET_ACCESS_KEY
(and S3_FRONT_SESSION_TOKEN: temporary credentials, every request must carry it).
It starts s3rver on a free port, listens on two free ports of 127.0.0.1 (S3,
over TLS when given a certificate; and the control endpoint, plain HTTP),
writes "S3_PORT CONTROL_PORT" into FILE when ready, and stops (with s3rver) on
SIGTERM or when its parent dies.
"""

import argparse
import ctypes
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

ElementTree.register_namespace('', 'http://s3.amazonaws.com/doc/2006-03-01/')

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faults import Faults  # noqa: E402
from multipart_uploads import MultipartUploads  # noqa: E402
from sigv4_check import AUTH_QUERY_PARAMS, Refusal, Verifier, split_query  # noqa: E402

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 16 << 20
HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer',
              'transfer-encoding', 'upgrade', 'expect', 'host', 'authorization',
              'proxy-authorization'}
CONTROL = '/__front__/'
# a virtual-hosted Host header of AWS: bucket.s3.region.amazonaws.com[.cn]
VIRTUAL_HOST = re.compile(r'([a-z0-9][a-z0-9-]{1,61}[a-z0-9])\.s3\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?')
MAX_LOGGED_REQUESTS = 100000


class ClientGone(Exception):
    """The client closed the connection before sending its whole body."""


class Front:
    """What all handler threads share."""

    def __init__(self, verifier, s3rver_port, data_dir, spool_dir):
        self.verifier = verifier
        self.s3rver_port = s3rver_port
        self.uploads = MultipartUploads(data_dir)
        self.faults = Faults()
        self.spool_dir = spool_dir
        self.etag_aliases = {}  # hostile ETag answered -> the real one
        self.log = []
        self.log_lock = threading.Lock()

    def record(self, entry):
        with self.log_lock:
            if len(self.log) < MAX_LOGGED_REQUESTS:
                self.log.append(entry)


def error_document(code, message, resource, extra):
    """An S3 <Error> document."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<Error>',
             f'<Code>{escape(code)}</Code>', f'<Message>{escape(message)}</Message>',
             f'<Resource>{escape(resource)}</Resource>']
    for name, value in extra.items():
        parts.append(f'<{name}>{escape(str(value))}</{name}>')
    parts.append('<RequestId>vproxy-test-front</RequestId></Error>')
    return '\n'.join(parts).encode('utf-8')


class Handler(http.server.BaseHTTPRequestHandler):
    """One client connection; HTTP/1.1 with keep-alive."""

    protocol_version = 'HTTP/1.1'
    server_version = 'vproxy-test-front'
    front = None  # set in main()

    def log_message(self, fmt, *args):
        pass

    def handle_expect_100(self):
        # decided per request: 100 Continue only when the body will be read
        self.expect_continue = True
        return True

    def handle_one(self):
        """One request; a 100 Continue never owed carries over to the next."""
        try:
            self.handle_request()
        finally:
            self.expect_continue = False

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

    # -- plumbing ---------------------------------------------------------

    def send_plain(self, status, body=b'', content_type='application/xml', headers=()):
        """A complete response with a body (not sent for HEAD)."""
        self.send_response_only(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(0 if self.command == 'HEAD' else len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def send_error_document(self, status, code, message, extra=None):
        self.entry['status'] = status
        self.entry['error_code'] = code
        self.send_plain(status, error_document(code, message, self.raw_path, extra or {}))

    def body_length(self):
        """The declared body length; chunked bodies are refused."""
        if 'Transfer-Encoding' in self.headers:
            raise Refusal(411, 'MissingContentLength',
                          'You must provide the Content-Length HTTP header.')
        try:
            return int(self.headers.get('Content-Length', '0'))
        except ValueError:
            raise Refusal(400, 'InvalidArgument', 'bad Content-Length')

    def start_body(self):
        """About to read the body: say 100 Continue if the client waits."""
        if getattr(self, 'expect_continue', False):
            self.expect_continue = False
            self.wfile.write(b'HTTP/1.1 100 Continue\r\n\r\n')

    def body_chunks(self, length):
        """The request body, in chunks."""
        self.start_body()
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise ClientGone()
            remaining -= len(chunk)
            self.entry['bytes_in'] += len(chunk)
            yield chunk

    def discard_body(self, length):
        """Read and drop a body (when answering without forwarding)."""
        if getattr(self, 'expect_continue', False) or length > 64 * CHUNK:
            self.close_connection = True  # cheaper than reading it
            return
        for _ in self.body_chunks(length):
            pass

    # -- the request ------------------------------------------------------

    def handle_request(self):
        self.raw_path, _, self.raw_query = self.path.partition('?')
        if self.raw_path.startswith(CONTROL):
            return self.handle_control()
        self.query = dict(split_query(self.raw_query))
        # AWS's virtual-hosted style (Host: bucket.s3.region.amazonaws.com,
        # reached with curl --connect-to): the bucket is in the host name;
        # s3rver is asked path-style
        virtual = VIRTUAL_HOST.fullmatch(self.headers.get('Host') or '')
        if virtual:
            bucket, key = virtual.group(1), self.raw_path.lstrip('/')
            self.upstream_path = '/' + bucket + self.raw_path
        else:
            bucket, _, key = self.raw_path.lstrip('/').partition('/')
            self.upstream_path = self.raw_path
        self.bucket = unquote(bucket)
        self.key = unquote(key)
        self.entry = {'method': self.command, 'bucket': self.bucket, 'key': self.key,
                      'query': {k: v for k, v in self.query.items()
                                if k not in AUTH_QUERY_PARAMS},
                      'auth': None, 'status': None, 'error_code': None,
                      'fault': None, 'bytes_in': 0, 'range': self.headers.get('Range'),
                      'peer': self.client_address[1], 'time': time.time()}
        self.front.record(self.entry)
        try:
            length = self.body_length()
            fault = self.front.faults.take(self.command, self.key, self.query)
            if fault:
                self.entry['fault'] = fault.description
                if fault.action == 'drop':
                    self.close_connection = True
                    return
                if fault.action == 'error':
                    self.discard_body(length)
                    if fault.body is not None:
                        self.entry['status'] = fault.status
                        return self.send_plain(fault.status, fault.body.encode('utf-8'))
                    return self.send_error_document(fault.status, fault.code, fault.message)
                if fault.action == 'stall':
                    time.sleep(fault.seconds)
            try:
                self.entry['auth'] = self.front.verifier.verify(
                    self.command, self.raw_path, self.raw_query, self.headers)
            except Refusal as refusal:
                self.discard_body(length)
                return self.send_error_document(refusal.status, refusal.code,
                                                refusal.message, refusal.extra)
            self.dispatch(length, fault if fault and fault.action in ('truncate', 'etag') else None)
        except Refusal as refusal:
            self.close_connection = True
            self.send_error_document(refusal.status, refusal.code, refusal.message, refusal.extra)
        except (ClientGone, ConnectionError, BrokenPipeError):
            self.entry['status'] = 'client-gone'
            self.close_connection = True

    def dispatch(self, length, truncate):
        """Serve what s3rver lacks, forward the rest."""
        upload_id = self.query.get('uploadId')
        if self.command == 'GET' and 'uploads' in self.query and not self.key:
            return self.list_uploads()
        if upload_id is not None:
            if not self.front.uploads.bucket_exists(self.bucket):
                self.discard_body(length)
                return self.send_error_document(404, 'NoSuchBucket',
                                                'The specified bucket does not exist')
            if self.command == 'DELETE' and self.front.uploads.exists(self.bucket, upload_id):
                self.front.uploads.abort(self.bucket, upload_id)
                self.entry['status'] = 204
                return self.send_plain(204)
            if self.command == 'DELETE' or not self.front.uploads.begin(self.bucket, upload_id):
                self.discard_body(length)
                return self.send_error_document(
                    404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID '
                    'may be invalid, or the upload may have been aborted or completed.')
            try:
                return self.forward(length, truncate)
            finally:
                self.front.uploads.end(upload_id)
        return self.forward(length, truncate)

    def list_uploads(self):
        if not self.front.uploads.bucket_exists(self.bucket):
            return self.send_error_document(404, 'NoSuchBucket',
                                            'The specified bucket does not exist')
        body = self.front.uploads.list_xml(self.bucket, self.query.get('prefix', ''),
                                           self.query.get('encoding-type') == 'url')
        self.entry['status'] = 200
        self.send_plain(200, body)

    # -- forwarding to s3rver -----------------------------------------------

    def upstream(self):
        """This thread's connection to s3rver."""
        conn = getattr(self, '_upstream', None)
        if conn is None:
            conn = http.client.HTTPConnection('127.0.0.1', self.front.s3rver_port, timeout=300)
            self._upstream = conn
        return conn

    def drop_upstream(self):
        conn = getattr(self, '_upstream', None)
        if conn is not None:
            conn.close()
        self._upstream = None

    def upstream_target(self):
        """Path and query for s3rver: the same, without the presign parameters."""
        kept = [item for item in self.raw_query.split('&') if item and
                item.partition('=')[0] not in AUTH_QUERY_PARAMS]
        return self.upstream_path + ('?' + '&'.join(kept) if kept else '')

    def checked_body(self, length):
        """The body, checked against x-amz-content-sha256 when that is a hash:
        yields chunks, holding the last one back until the hash matched."""
        declared = self.headers.get('X-Amz-Content-SHA256', 'UNSIGNED-PAYLOAD')
        if declared == 'UNSIGNED-PAYLOAD' or self.entry['auth'] == 'query':
            yield from self.body_chunks(length)
            return
        if not re.fullmatch(r'[0-9a-fA-F]{64}', declared):
            raise Refusal(400, 'InvalidArgument',
                          'x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a '
                          'SHA-256 (streaming signatures are not supported here)')
        digest = hashlib.sha256()
        held = None
        for chunk in self.body_chunks(length):
            digest.update(chunk)
            if held is not None:
                yield held
            held = chunk
        if digest.hexdigest() != declared.lower():
            raise Refusal(400, 'XAmzContentSHA256Mismatch',
                          "The provided 'x-amz-content-sha256' header does not "
                          'match what was computed.',
                          {'ClientComputedContentSHA256': declared,
                           'S3ComputedContentSHA256': digest.hexdigest()})
        if held is not None:
            yield held

    def spooled_body(self, length):
        """A PutObject body read whole and checked before s3rver sees it."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=self.front.spool_dir)
        for chunk in self.checked_body(length):
            spool.write(chunk)
        spool.seek(0)
        return spool

    def send_body(self, conn, length):
        """Stream the checked body to s3rver.  When the client goes away or the
        body fails its check in the middle of a part, the part is still
        finished (padded) and s3rver's answer awaited: s3rver crashes if an
        abort removes the folder of a part it is still writing."""
        sent = 0
        try:
            for chunk in self.checked_body(length):
                conn.send(chunk)
                sent += len(chunk)
        except (ClientGone, Refusal):
            if 'uploadId' in self.query:
                try:
                    padding = bytes(CHUNK)
                    while sent < length:
                        conn.send(padding[:min(CHUNK, length - sent)])
                        sent += min(CHUNK, length - sent)
                    conn.getresponse().read()
                except (OSError, http.client.HTTPException):
                    pass
            raise

    def unaliased_completion(self, length):
        """A CompleteMultipartUpload body read as S3 does, with a real XML
        parser (MalformedXML when it is not well-formed), the hostile ETags
        the front answered mapped back to s3rver's."""
        body = b''.join(self.checked_body(length))
        try:
            document = ElementTree.fromstring(body)
        except ElementTree.ParseError as error:
            raise Refusal(400, 'MalformedXML', f'The XML you provided was not well-formed: {error}')
        for etag in document.iter('{http://s3.amazonaws.com/doc/2006-03-01/}ETag'):
            etag.text = self.front.etag_aliases.get(etag.text, etag.text)
        return ElementTree.tostring(document, encoding='utf-8')

    def forward(self, length, truncate):
        spool = None
        if self.command == 'PUT' and 'uploadId' not in self.query and length > 0:
            spool = self.spooled_body(length)
        elif self.command == 'POST' and 'uploadId' in self.query and self.front.etag_aliases:
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
            spool.write(self.unaliased_completion(length))
            length = spool.tell()
            spool.seek(0)
        conn = self.upstream()
        try:
            conn.putrequest(self.command, self.upstream_target(), skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader('Host', f'127.0.0.1:{self.front.s3rver_port}')
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != 'content-length':
                    conn.putheader(name, value)
            if length > 0 or self.command in ('PUT', 'POST'):
                conn.putheader('Content-Length', str(length))
            conn.endheaders()
            if spool is not None:
                for chunk in iter(lambda: spool.read(CHUNK), b''):
                    conn.send(chunk)
                spool.close()
            elif length > 0:
                self.send_body(conn, length)
            response = conn.getresponse()
        except (ClientGone, Refusal):
            self.drop_upstream()
            raise
        except (OSError, http.client.HTTPException) as error:
            self.drop_upstream()
            self.close_connection = True
            return self.send_error_document(503, 'ServiceUnavailable',
                                            f's3rver did not answer: {error}')
        self.relay(response, truncate)

    def relay(self, response, truncate):
        """Send s3rver's answer on, cut short when a truncate fault says so,
        with a hostile ETag when an etag fault says so."""
        self.entry['status'] = response.status
        self.send_response_only(response.status, response.reason)
        length = response.getheader('Content-Length')
        body = None
        if length is None and self.command != 'HEAD' and response.status not in (204, 304):
            body = response.read()
            length = str(len(body))
        for name, value in response.getheaders():
            if truncate and truncate.action == 'etag' and name.lower() == 'etag':
                hostile = '"' + truncate.etag + value.strip('"') + '"'
                self.front.etag_aliases[hostile] = value
                value = hostile
            if name.lower() not in HOP_BY_HOP and name.lower() != 'content-length':
                self.send_header(name, value)
        if length is not None:
            self.send_header('Content-Length', length)
        self.end_headers()
        if self.command == 'HEAD' or response.status in (204, 304):
            response.read()
            return
        limit = truncate.bytes if truncate and truncate.action == 'truncate' else None
        sent = 0
        chunks = [body] if body is not None else iter(lambda: response.read(CHUNK), b'')
        for chunk in chunks:
            if limit is not None and sent + len(chunk) >= limit:
                self.wfile.write(chunk[:limit - sent])
                self.wfile.flush()
                self.drop_upstream()
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)
        if response.will_close:
            self.drop_upstream()

    # -- control ------------------------------------------------------------

    def handle_control(self):
        what = self.raw_path[len(CONTROL):]
        self.entry = {'bytes_in': 0}  # not recorded
        body = b''.join(self.body_chunks(int(self.headers.get('Content-Length', '0'))))
        if what == 'faults' and self.command == 'POST':
            try:
                self.front.faults.add(json.loads(body))
            except (ValueError, KeyError, re.error) as error:
                return self.send_plain(400, str(error).encode(), 'text/plain')
            return self.send_plain(204)
        if what == 'faults' and self.command == 'DELETE':
            self.front.faults.clear()
            return self.send_plain(204)
        if what == 'requests' and self.command == 'GET':
            with self.front.log_lock:
                data = json.dumps(self.front.log).encode('utf-8')
            return self.send_plain(200, data, 'application/json')
        if what == 'requests' and self.command == 'DELETE':
            with self.front.log_lock:
                self.front.log.clear()
            return self.send_plain(204)
        if what.startswith('buckets/') and self.command == 'PUT':
            conn = http.client.HTTPConnection('127.0.0.1', self.front.s3rver_port, timeout=60)
            conn.request('PUT', '/' + quote(what[len('buckets/'):]))
            response = conn.getresponse()
            answer = response.read()
            conn.close()
            return self.send_plain(response.status, answer)
        return self.send_plain(404, b'unknown control request', 'text/plain')


def start_s3rver(data_dir):
    """Run s3rver on a free port; return the process and its port."""
    here = os.path.dirname(os.path.abspath(__file__))
    program = os.path.join(here, 'node_modules', 's3rver', 'bin', 's3rver.js')
    node = shutil.which('node') or shutil.which('nodejs')
    if not node or not os.path.exists(program):
        sys.exit('front: s3rver is not installed (run `npm ci` in test/s3)')
    libc = ctypes.CDLL(None, use_errno=True)

    def die_with_parent():
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    # s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3
    # keeps in its legacy provider: without it every truncated listing is a 500
    process = subprocess.Popen(
        [node, '--openssl-legacy-provider', program, '--directory', data_dir, '--address', '127.0.0.1', '--port', '0',
         '--silent', '--no-vhost-buckets'],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    for line in process.stdout:
        match = re.search(rb'listening on [^:]+:(\d+)', line)
        if match:
            return process, int(match.group(1))
    sys.exit('front: s3rver did not start')


def main():
    parser = argparse.ArgumentParser(description='SigV4-verifying front of s3rver')
    parser.add_argument('--data', required=True)
    parser.add_argument('--port-file', required=True)
    parser.add_argument('--region', default='us-east-1')
    parser.add_argument('--tls-cert')
    parser.add_argument('--tls-key')
    args = parser.parse_args()

    verifier = Verifier(os.environ['S3_FRONT_ACCESS_KEY_ID'],
                        os.environ['S3_FRONT_SECRET_ACCESS_KEY'], args.region,
                        os.environ.get('S3_FRONT_SESSION_TOKEN'))
    s3rver_dir = os.path.join(args.data, 's3rver')
    spool_dir = os.path.join(args.data, 'spool')
    os.makedirs(s3rver_dir, exist_ok=True)
    os.makedirs(spool_dir, exist_ok=True)
    s3rver, s3rver_port = start_s3rver(s3rver_dir)
    parent = os.getppid()

    def stop(*_):
        s3rver.terminate()
        try:
            s3rver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            s3rver.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_parent():
        while os.getppid() == parent and s3rver.poll() is None:
            time.sleep(0.5)
        stop()

    Handler.front = Front(verifier, s3rver_port, s3rver_dir, spool_dir)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    control = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    threading.Thread(target=watch_parent, daemon=True).start()
    temp = args.port_file + '.tmp'
    with open(temp, 'w') as f:
        f.write(f'{server.server_address[1]} {control.server_address[1]}\n')
    os.rename(temp, args.port_file)
    server.serve_forever()


if __name__ == '__main__':
    main()
