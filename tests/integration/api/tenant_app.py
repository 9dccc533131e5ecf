"""A tiny tenant for the API tests: answers every path, logs each request to stdout.

Usage: python tenant_app.py PORT. ``/health`` answers 200; ``/say?text=...`` prints the
text (one log line) and answers 200; ``/slow`` waits 20 ms.
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/say":
            text = parse_qs(url.query).get("text", [""])[0]
            print(text, flush=True)
        elif url.path == "/slow":
            time.sleep(0.02)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
