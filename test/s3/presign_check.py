#!/usr/bin/python3
"""Check a presigned (query-signed) S3 URL with botocore, as S3 would.

    presign_check.py METHOD URL [--token TOKEN] [--at-signing-time]
    (credentials in S3_CHECK_ACCESS_KEY_ID, S3_CHECK_SECRET_ACCESS_KEY,
     region in S3_CHECK_REGION, default us-east-1)

The URL is taken apart as it would travel: its Host, its raw path and query;
sigv4_check.Verifier decodes and canonicalises them again and recomputes the
signature with botocore's S3SigV4QueryAuth, checks the credential scope, the
expiry (1 s .. 7 days, not expired) and that the host is signed.  With
--token the URL must carry exactly that X-Amz-Security-Token; without it, none.
--at-signing-time checks as of the URL's X-Amz-Date instead of now (a URL
valid for one second, checked without a race against the clock).
Prints "ok" and exits 0, or prints the S3 error code and message and exits 1.
"""

import email.message
import os
import sys
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigv4_check import Refusal, Verifier, parse_amz_date, split_query  # noqa: E402


def main():
    args = sys.argv[1:]
    token = None
    at_signing_time = '--at-signing-time' in args
    if at_signing_time:
        args.remove('--at-signing-time')
    if '--token' in args:
        at = args.index('--token')
        token = args[at + 1]
        del args[at:at + 2]
    method, url = args
    parts = urlsplit(url)
    headers = email.message.Message()
    headers['Host'] = parts.netloc
    verifier = Verifier(os.environ['S3_CHECK_ACCESS_KEY_ID'],
                        os.environ['S3_CHECK_SECRET_ACCESS_KEY'],
                        os.environ.get('S3_CHECK_REGION', 'us-east-1'))
    try:
        given = [v for n, v in split_query(parts.query) if n == 'X-Amz-Security-Token']
        if given != ([token] if token is not None else []):
            raise Refusal(403, 'InvalidToken', 'the security token is not the expected one')
        now = None
        if at_signing_time:
            dates = [v for n, v in split_query(parts.query) if n == 'X-Amz-Date']
            now = parse_amz_date(dates[0] if dates else '')
        how = verifier.verify(method, parts.path, parts.query, headers, now=now)
        if how != 'query':
            raise Refusal(403, 'AccessDenied', f'signed by {how}, not by query')
    except Refusal as refusal:
        print(f'{refusal.code}: {refusal.message}')
        return 1
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
