"""Check the AWS Signature Version 4 of a request as it arrived, with botocore.

s3rver does not check SigV4 signatures, so the front recomputes each one with
an independent implementation (botocore, Debian's python3-botocore) from the
request line and headers it received and the known test credentials, the way
S3 does: the path and query are decoded and canonicalised again (a client that
signs a path it did not send, or encodes it differently from S3's rules, fails),
every x-amz-* header must be signed, and times are checked.  A refusal carries
the S3 error that S3 would answer.
"""

import datetime
import hmac
import re
from urllib.parse import quote, unquote_to_bytes

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = 'AWS4-HMAC-SHA256'
AUTH_QUERY_PARAMS = frozenset([
    'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires',
    'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token',
])
MAX_CLOCK_SKEW = datetime.timedelta(minutes=15)
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class Refusal(Exception):
    """An S3 error answer: HTTP status, error code, message, extra elements."""

    def __init__(self, status, code, message, extra=None):
        super().__init__(f'{code}: {message}')
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


def split_query(raw_query):
    """The query's (name, value) pairs, percent-decoded ('+' stays '+')."""
    pairs = []
    for item in raw_query.split('&') if raw_query else []:
        name, _, value = item.partition('=')
        pairs.append((unquote_to_bytes(name).decode('utf-8', 'surrogateescape'),
                      unquote_to_bytes(value).decode('utf-8', 'surrogateescape')))
    return pairs


def canonical_path(raw_path):
    """The path as S3 canonicalises it: decoded, then every byte but
    unreserved characters and '/' percent-encoded."""
    return quote(unquote_to_bytes(raw_path), safe='/~')


def parse_amz_date(text):
    """A datetime from an ISO 8601 basic timestamp, or None."""
    try:
        return datetime.datetime.strptime(text, '%Y%m%dT%H%M%SZ').replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


class Verifier:
    """Checks requests against one set of credentials in one region."""

    def __init__(self, access_key_id, secret_access_key, region, session_token=None):
        self.access_key_id = access_key_id
        self.credentials = Credentials(access_key_id, secret_access_key)
        self.region = region
        self.session_token = session_token or None

    def _check_token(self, headers, params):
        """Temporary credentials: the session token must come with the
        request (signed, as every x-amz-* header must be)."""
        if self.session_token is None:
            return
        token = headers.get('X-Amz-Security-Token')
        if token is None:
            token = dict(params).get('X-Amz-Security-Token')
        if token != self.session_token:
            raise Refusal(403, 'InvalidToken' if token else 'AccessDenied',
                          'The provided token is malformed or otherwise invalid.'
                          if token else 'the request carries no session token')

    def verify(self, method, raw_path, raw_query, headers, now=None):
        """Check a request; return 'header' or 'query' (how it was signed),
        raise Refusal when S3 would refuse it."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        params = split_query(raw_query)
        by_header = 'Authorization' in headers
        by_query = any(name == 'X-Amz-Algorithm' for name, _ in params)
        if by_header and by_query:
            raise Refusal(400, 'InvalidArgument',
                          'Only one auth mechanism allowed')
        if by_header or by_query:
            self._check_token(headers, params)
        if by_header:
            self._verify_header(method, raw_path, params, headers, now)
            return 'header'
        if by_query:
            self._verify_query(method, raw_path, params, headers, now)
            return 'query'
        raise Refusal(403, 'AccessDenied', 'Anonymous access is denied')

    def _check_scope(self, credential, date_text, error_code, status=400):
        """Check Credential=AKID/DATE/REGION/s3/aws4_request against ours."""
        parts = credential.split('/')
        if len(parts) != 5 or parts[3] != 's3' or parts[4] != 'aws4_request':
            raise Refusal(status, error_code,
                          f'the credential {credential!r} is malformed')
        if parts[0] != self.access_key_id:
            raise Refusal(403, 'InvalidAccessKeyId',
                          'The AWS Access Key Id you provided does not exist '
                          'in our records.', {'AWSAccessKeyId': parts[0]})
        if parts[2] != self.region:
            raise Refusal(status, error_code,
                          f"the region '{parts[2]}' is wrong; expecting "
                          f"'{self.region}'", {'Region': self.region})
        if parts[1] != date_text[:8]:
            raise Refusal(status, error_code,
                          'Invalid credential date. Date is not the same as '
                          'X-Amz-Date.')

    def _check_signed_headers(self, signed, headers):
        """host must be signed, and every x-amz-* header that was sent."""
        if 'host' not in signed:
            raise Refusal(403, 'AccessDenied', 'the host header is not signed')
        unsigned = sorted({name.lower() for name in headers.keys()
                           if name.lower().startswith('x-amz-')} - set(signed))
        if unsigned:
            raise Refusal(403, 'AccessDenied',
                          'There were headers present in the request which '
                          'were not signed',
                          {'HeadersNotSigned': ', '.join(unsigned)})

    def _request(self, method, raw_path, params, headers, signed, timestamp):
        """The request as botocore sees it: signed headers only, path and
        query as S3 canonicalises them."""
        header_values = {}
        for name in signed:
            values = headers.get_all(name) or []
            header_values[name] = ','.join(values)
        request = AWSRequest(
            method=method,
            url='http://' + (headers.get('Host') or 'localhost')
            + canonical_path(raw_path),
            headers=header_values,
            params=params)
        request.context['timestamp'] = timestamp
        return request

    def _compare(self, signer, request, signature):
        """Recompute the signature and compare it with the one given."""
        canonical_request = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, signature):
            raise Refusal(403, 'SignatureDoesNotMatch',
                          'The request signature we calculated does not match '
                          'the signature you provided. Check your key and '
                          'signing method.',
                          {'AWSAccessKeyId': self.access_key_id,
                           'StringToSign': string_to_sign,
                           'CanonicalRequest': canonical_request})

    def _check_time(self, amz_date):
        """The request time must parse."""
        when = parse_amz_date(amz_date)
        if when is None:
            raise Refusal(403, 'AccessDenied',
                          'AWS authentication requires a valid Date or '
                          'x-amz-date header')
        return when

    def _verify_header(self, method, raw_path, params, headers, now):
        """Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
        Signature=..."""
        match = re.fullmatch(ALGORITHM + r' +(.*)', headers['Authorization'].strip())
        if not match:
            raise Refusal(400, 'InvalidArgument', 'Unsupported Authorization Type')
        fields = {}
        for component in match.group(1).split(','):
            name, _, value = component.strip().partition('=')
            fields[name] = value
        if set(fields) != {'Credential', 'SignedHeaders', 'Signature'}:
            raise Refusal(400, 'AuthorizationHeaderMalformed',
                          'The authorization header requires three components: '
                          'Credential, SignedHeaders, and Signature.')
        amz_date = headers.get('X-Amz-Date', '')
        when = self._check_time(amz_date)
        self._check_scope(fields['Credential'], amz_date, 'AuthorizationHeaderMalformed')
        if abs(now - when) > MAX_CLOCK_SKEW:
            raise Refusal(403, 'RequestTimeTooSkewed',
                          'The difference between the request time and the '
                          'current time is too large.')
        if 'X-Amz-Content-SHA256' not in headers:
            raise Refusal(400, 'InvalidRequest',
                          'Missing required header for this request: '
                          'x-amz-content-sha256')
        signed = fields['SignedHeaders'].split(';')
        self._check_signed_headers(signed, headers)
        request = self._request(method, raw_path, params, headers, signed, amz_date)
        self._compare(S3SigV4Auth(self.credentials, 's3', self.region),
                      request, fields['Signature'])

    def _verify_query(self, method, raw_path, params, headers, now):
        """A presigned URL: X-Amz-* query parameters."""
        auth = {name: value for name, value in params if name in AUTH_QUERY_PARAMS}
        missing = {'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date',
                   'X-Amz-Expires', 'X-Amz-SignedHeaders',
                   'X-Amz-Signature'} - set(auth)
        if missing or auth['X-Amz-Algorithm'] != ALGORITHM:
            raise Refusal(400, 'AuthorizationQueryParametersError',
                          'Query-string authentication version 4 requires the '
                          'X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, '
                          'X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires '
                          'parameters.')
        when = self._check_time(auth['X-Amz-Date'])
        self._check_scope(auth['X-Amz-Credential'], auth['X-Amz-Date'],
                          'AuthorizationQueryParametersError')
        if not re.fullmatch(r'[0-9]+', auth['X-Amz-Expires']):
            raise Refusal(400, 'AuthorizationQueryParametersError',
                          'X-Amz-Expires should be a number')
        expires = int(auth['X-Amz-Expires'])
        if expires < 1 or expires > MAX_PRESIGN_SECONDS:
            raise Refusal(400, 'AuthorizationQueryParametersError',
                          'X-Amz-Expires must be less than a week (in seconds) '
                          'that is 604800 and more than 0')
        if when - now > MAX_CLOCK_SKEW:
            raise Refusal(403, 'AccessDenied', 'Request is not valid yet')
        if now > when + datetime.timedelta(seconds=expires):
            raise Refusal(403, 'AccessDenied', 'Request has expired',
                          {'X-Amz-Expires': str(expires),
                           'Expires': (when + datetime.timedelta(seconds=expires))
                           .strftime('%Y-%m-%dT%H:%M:%SZ'),
                           'ServerTime': now.strftime('%Y-%m-%dT%H:%M:%SZ')})
        signed = auth['X-Amz-SignedHeaders'].split(';')
        self._check_signed_headers(signed, headers)
        unsigned_params = [(n, v) for n, v in params if n != 'X-Amz-Signature']
        request = self._request(method, raw_path, unsigned_params, headers,
                                signed, auth['X-Amz-Date'])
        self._compare(S3SigV4QueryAuth(self.credentials, 's3', self.region, expires),
                      request, auth['X-Amz-Signature'])
