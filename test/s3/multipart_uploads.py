"""ListMultipartUploads and AbortMultipartUpload, which s3rver 3.7 lacks.

s3rver keeps an unfinished upload as the folder
DATA/BUCKET/._S3rver_uploads/UPLOAD_ID holding the file `key` and one file per
part; CompleteMultipartUpload removes it.  The front answers the two missing
operations from that folder, so that the tests can check that an upload that
failed was aborted and left nothing behind, as on S3.  UploadPart and
CompleteMultipartUpload for an upload that does not exist (aborted) get
NoSuchUpload, as on S3, instead of s3rver silently creating the folder again;
an abort waits for the parts of that upload still in flight through the front.
"""

import datetime
import os
import re
import shutil
import threading
from urllib.parse import quote
from xml.sax.saxutils import escape

UPLOAD_ID = re.compile(r'[0-9a-f]{32}')


class MultipartUploads:
    """The unfinished uploads in s3rver's data folder."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._in_flight = {}
        self._changed = threading.Condition()

    def _folder(self, bucket, upload_id=''):
        return os.path.join(self.data_dir, bucket, '._S3rver_uploads', upload_id)

    def bucket_exists(self, bucket):
        """Whether s3rver has the bucket."""
        return bool(bucket) and '/' not in bucket and bucket not in ('.', '..') \
            and os.path.isdir(os.path.join(self.data_dir, bucket))

    def exists(self, bucket, upload_id):
        """Whether the upload is unfinished (neither completed nor aborted)."""
        return bool(UPLOAD_ID.fullmatch(upload_id or '')) \
            and os.path.isdir(self._folder(bucket, upload_id))

    def begin(self, bucket, upload_id):
        """A request of this upload goes through the front, if the upload
        still exists (checked under the lock an abort takes)."""
        with self._changed:
            if not self.exists(bucket, upload_id):
                return False
            self._in_flight[upload_id] = self._in_flight.get(upload_id, 0) + 1
            return True

    def end(self, upload_id):
        """That request is over."""
        with self._changed:
            self._in_flight[upload_id] -= 1
            if self._in_flight[upload_id] == 0:
                del self._in_flight[upload_id]
            self._changed.notify_all()

    def abort(self, bucket, upload_id):
        """Remove an unfinished upload once its requests in flight are over."""
        with self._changed:
            self._changed.wait_for(lambda: upload_id not in self._in_flight, timeout=60)
            shutil.rmtree(self._folder(bucket, upload_id), ignore_errors=True)

    def list_xml(self, bucket, prefix='', url_encoded=False):
        """The ListMultipartUploadsResult document of a bucket."""
        uploads = []
        folder = self._folder(bucket)
        for upload_id in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            try:
                with open(os.path.join(folder, upload_id, 'key'), encoding='utf-8') as f:
                    key = f.read()
                started = os.stat(os.path.join(folder, upload_id)).st_mtime
            except FileNotFoundError:
                continue
            if key.startswith(prefix):
                uploads.append((key, upload_id, started))
        uploads.sort()
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                 f'<Bucket>{escape(bucket)}</Bucket><KeyMarker></KeyMarker>',
                 '<UploadIdMarker></UploadIdMarker><NextKeyMarker></NextKeyMarker>',
                 '<NextUploadIdMarker></NextUploadIdMarker>',
                 f'<Prefix>{escape(prefix)}</Prefix>',
                 '<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>']
        if url_encoded:
            parts.append('<EncodingType>url</EncodingType>')
        for key, upload_id, started in uploads:
            when = datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
            shown = quote(key, safe='/') if url_encoded else key
            parts.append(
                f'<Upload><Key>{escape(shown)}</Key><UploadId>{upload_id}</UploadId>'
                '<Initiator><ID>123456789000</ID><DisplayName>S3rver</DisplayName></Initiator>'
                '<Owner><ID>123456789000</ID><DisplayName>S3rver</DisplayName></Owner>'
                '<StorageClass>STANDARD</StorageClass>'
                f'<Initiated>{when.strftime("%Y-%m-%dT%H:%M:%S.000Z")}</Initiated></Upload>')
        parts.append('</ListMultipartUploadsResult>')
        return '\n'.join(parts).encode('utf-8')
