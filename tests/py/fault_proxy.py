"""A fault-injecting HTTP proxy for the AWS tests, on 127.0.0.1: forwards every request to a real
local server (DynamoDB Local, moto) and, on a fixed schedule, answers instead with the failures
AWS services produce under load:

  * every 4th request: 500 InternalServerError, 503 ServiceUnavailable or 400 throttling
    (ProvisionedThroughputExceededException / ThrottlingException), in turn, without forwarding;
  * every DynamoDB BatchWriteItem with more than one item: only the first half is forwarded and
    the rest is returned as UnprocessedItems (the client must re-send it).

With `s3` as third argument the faults are S3's (XML bodies), on every 8th request (S3 traffic
is much heavier): 500 InternalError, 503 ServiceUnavailable and 503 SlowDown (S3's
throttling), in turn; and the proxy also counts the bytes each
GET returned, so a test can tell ranged reads from whole-object downloads.

Never two failures in a row for the same client, so a client that retries (as the AWS SDKs do)
always gets through. Prints `port <N>` on stdout once listening; writes its counters as JSON to
STATS_FILE on every request.

usage: fault_proxy.py TARGET_URL STATS_FILE [s3]
"""
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

TARGET = urlsplit(sys.argv[1])
STATS_FILE = sys.argv[2]
LOCK = threading.Lock()
S3_MODE = len(sys.argv) > 3 and sys.argv[3] == "s3"
STATS = {"requests": 0, "forwarded": 0, "http_500": 0, "http_503": 0, "throttled": 0, "unprocessed_items": 0, "batch_writes_split": 0,
         "gets": 0, "ranged_gets": 0, "get_bytes": 0, "max_get_bytes": 0, "puts": 0}

FAULTS = [
    (500, "InternalServerError", "com.amazonaws.dynamodb.v20120810#InternalServerError", "http_500"),
    (503, "ServiceUnavailable", "com.amazonaws.dynamodb.v20120810#ServiceUnavailableException", "http_503"),
    (400, "ProvisionedThroughputExceededException", "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "throttled"),
]

S3_FAULTS = [
    (500, "InternalError", "http_500"),
    (503, "ServiceUnavailable", "http_503"),
    (503, "SlowDown", "throttled"),
]


def save():
    """Writes the counters (call with LOCK held): every change is on disk before the answer
    leaves, so a test that kills the proxy right after its client finished reads them all."""
    with open(STATS_FILE, "w") as f:
        json.dump(STATS, f)


def bump(key, n=1):
    with LOCK:
        STATS[key] += n
        save()


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self, body):
        conn = http.client.HTTPConnection(TARGET.hostname, TARGET.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        headers["Host"] = f"{TARGET.hostname}:{TARGET.port}"
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")]
        conn.close()
        bump("forwarded")
        return resp.status, out_headers, data

    def _reply(self, status, headers, data, head_length=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        # A HEAD answer has no body but keeps the object's length.
        self.send_header("Content-Length", str(head_length if head_length is not None else len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _s3_fault(self, n):
        status, code, key = S3_FAULTS[(n // 8) % len(S3_FAULTS)]
        bump(key)
        payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                   f'<Message>injected {code}</Message><RequestId>fault-{n}</RequestId></Error>').encode()
        self._reply(status, [("Content-Type", "application/xml")], payload)

    def _s3_forward(self, body):
        conn = http.client.HTTPConnection(TARGET.hostname, TARGET.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        headers["Host"] = f"{TARGET.hostname}:{TARGET.port}"
        if body or "Content-Length" in self.headers:
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body if body else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        head_length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")]
        conn.close()
        with LOCK:
            STATS["forwarded"] += 1
            if self.command == "GET" and resp.status in (200, 206) and "?" not in self.path:
                STATS["gets"] += 1
                STATS["ranged_gets"] += 1 if "Range" in self.headers else 0
                STATS["get_bytes"] += len(data)
                STATS["max_get_bytes"] = max(STATS["max_get_bytes"], len(data))
            if self.command == "PUT":
                STATS["puts"] += 1
            save()
        self._reply(resp.status, out_headers, data, head_length)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with LOCK:
            STATS["requests"] += 1
            n = STATS["requests"]
        if S3_MODE:
            if n % 8 == 0:
                self._s3_fault(n)
            else:
                self._s3_forward(body)
            return
        if n % 4 == 0:
            status, code, type_, key = FAULTS[(n // 4) % len(FAULTS)]
            bump(key)
            payload = json.dumps({"__type": type_, "message": f"injected {code}"}).encode()
            self._reply(status, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)], payload)
            return
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith(".BatchWriteItem"):
            request = json.loads(body or b"{}")
            items = request.get("RequestItems", {})
            if len(items) == 1:
                (table, writes), = items.items()
                if len(writes) > 1:
                    keep, rest = writes[: len(writes) // 2], writes[len(writes) // 2 :]
                    forwarded = json.dumps({**request, "RequestItems": {table: keep}}).encode()
                    status, headers, data = self._forward(forwarded)
                    if status == 200:
                        answer = json.loads(data or b"{}")
                        unprocessed = answer.setdefault("UnprocessedItems", {})
                        unprocessed.setdefault(table, []).extend(rest)
                        data = json.dumps(answer).encode()
                        bump("batch_writes_split")
                        bump("unprocessed_items", len(rest))
                        headers = [(k, v) for k, v in headers if k.lower() != "x-amz-crc32"]
                    self._reply(status, headers, data)
                    return
        status, headers, data = self._forward(body)
        self._reply(status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    with open(STATS_FILE, "w") as f:
        json.dump(STATS, f)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
