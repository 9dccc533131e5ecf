"""Tenant apps the tests write into a project: small, stdlib only, any python runs them."""

from __future__ import annotations

import textwrap
from pathlib import Path

#: a tenant script answering ``ok <pid>`` (``--proto``: and its X-Forwarded-Proto)
PID_APP = Path(__file__).with_name("pid_app.py")

#: answers every GET with 200 ``ok``; logs one stdout line (``GET <path>``) and one stderr
#: line (``served <path>``) per request, so a test makes its tenant log on demand
LOGGING_APP = textwrap.dedent(
    """
    import os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            print("GET", self.path, flush=True)
            print("served", self.path, file=sys.stderr, flush=True)
            body = b"ok"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)
