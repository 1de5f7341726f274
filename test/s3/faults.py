"""Faults the front injects on demand, as the tests ask through its control
endpoint: each rule matches requests by method, key and query parameters, and
fires a bounded number of times.

A rule is a JSON object:
  match:   "method": "PUT", "key": "<regular expression searched in the key>",
           "query": {"partNumber": "2", "uploads": null}  (null: present with any value)
  action:  "error"    answer an S3 error without forwarding: "status" (503),
                      "code" ("SlowDown"), "message"; or "body", a raw
                      document sent as it is (entities, hostile markup)
           "drop"     close the connection without answering
           "truncate" forward, but cut the response body after "bytes" bytes
                      and close the connection
           "stall"    wait "seconds" before forwarding
           "etag"     forward, but answer the ETag "etag" + the real one (a
                      hostile ETag: the front maps it back when it reads a
                      CompleteMultipartUpload body, parsed as XML as S3 does)
  "count": how many matching requests it fires on (default 1, -1: forever)
"""

import re
import threading

ACTIONS = ('error', 'drop', 'truncate', 'stall', 'etag')


class FaultRule:
    """One rule, checked when added."""

    def __init__(self, spec):
        self.method = spec.get('method')
        self.key_pattern = re.compile(spec['key']) if spec.get('key') else None
        self.query = spec.get('query') or {}
        self.action = spec.get('action', 'error')
        if self.action not in ACTIONS:
            raise ValueError(f'unknown fault action {self.action!r}')
        self.status = int(spec.get('status', 503))
        self.code = spec.get('code', 'SlowDown')
        self.message = spec.get('message', 'Please reduce your request rate.')
        self.bytes = int(spec.get('bytes', 0))
        self.seconds = float(spec.get('seconds', 0))
        self.body = spec.get('body')
        self.etag = spec.get('etag', '')
        self.count = int(spec.get('count', 1))
        self.description = spec.get('name') or self.action

    def matches(self, method, key, query):
        """Whether this rule applies to a request."""
        if self.method and self.method != method:
            return False
        if self.key_pattern and not self.key_pattern.search(key or ''):
            return False
        for name, value in self.query.items():
            if name not in query or (value is not None and query[name] != str(value)):
                return False
        return True


class Faults:
    """The rules in force, in the order they were added."""

    def __init__(self):
        self._rules = []
        self._lock = threading.Lock()

    def add(self, specs):
        """Add one rule or a list of rules."""
        rules = [FaultRule(spec) for spec in (specs if isinstance(specs, list) else [specs])]
        with self._lock:
            self._rules.extend(rules)

    def clear(self):
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def take(self, method, key, query):
        """The first rule matching the request, used up by one, or None."""
        with self._lock:
            for rule in self._rules:
                if rule.count != 0 and rule.matches(method, key, query):
                    if rule.count > 0:
                        rule.count -= 1
                    return rule
        return None
