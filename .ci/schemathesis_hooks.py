"""Schemathesis hooks for amends (loaded by .ci/schemathesis through SCHEMATHESIS_HOOKS).

`POST /v1/telemetry/events` takes NDJSON, which schemathesis cannot send by itself: the
generated body (a string, as the document describes it) is sent as it is, UTF-8.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
class NdjsonSerializer:
    def _data(self, value):
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        return (json.dumps(value) + "\n").encode("utf-8")

    def as_requests(self, context, value):
        return {"data": self._data(value)}

    def as_werkzeug(self, context, value):
        return {"data": self._data(value)}
