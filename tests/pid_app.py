"""A tenant for the `ten serve` tests: answers ``ok <pid>`` on $PORT, and with
``--proto`` ``ok <pid> <X-Forwarded-Proto>`` (the TLS tests: did the tenant hear https?).

A script the tests name in a config (:data:`tests.apps.PID_APP`); stdlib only.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WITH_PROTO = "--proto" in sys.argv[1:]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        words = ["ok", str(os.getpid())]
        if WITH_PROTO:
            words.append(self.headers.get("x-forwarded-proto", "-"))
        body = " ".join(words).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the proxy's pool and the load open many connections at once
    daemon_threads = True


Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
