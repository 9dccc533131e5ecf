"""A tiny tenant for the supervisor tests (run as ``python tenant_app.py``).

Listens on 127.0.0.1:$PORT and answers ``GET /health`` (200, or 503 while the file
$UNHEALTHY_FILE exists), ``GET /`` (its tenant and pid), ``GET /env?NAME`` (a variable
of its environment, 404 if unset) and ``GET /say?text`` (prints the text to stdout).
Behaviour knobs, from the environment:

- ``CRASH_AFTER=S``: exit with code 3, S seconds after it started listening.
- ``EXIT_AT_ONCE=1``: exit with code 4 before listening.
- ``EXIT_IF_FILE=path``: exit with code 4 before listening while that file exists.
- ``STARTS_FILE=path``: append the start's epoch time (``time.time()``) to that file, one
  line per start (tests count spawns and compare start times with the restart schedule).
- ``IGNORE_TERM=1``: ignore SIGTERM, and start a child that ignores it too; the child's
  pid goes to $CHILD_PID_FILE.
- ``LISTEN_DELAY=S``: wait S seconds before listening.
"""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health":
            unhealthy = os.environ.get("UNHEALTHY_FILE")
            code = 503 if unhealthy and os.path.exists(unhealthy) else 200
            self._reply(code, b"ok" if code == 200 else b"sick")
        elif url.path == "/env":
            value = os.environ.get(url.query)
            self._reply(404 if value is None else 200, (value or "").encode())
        elif url.path == "/say":
            text = urllib.parse.unquote(url.query)
            print(text, flush=True)
            self._reply(200, b"said")
        else:
            body = f"{os.environ.get('TENANT', '?')} pid={os.getpid()}".encode()
            self._reply(200, body)

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    starts = os.environ.get("STARTS_FILE")
    if starts:
        with open(starts, "a") as f:
            f.write(f"{time.time()!r}\n")
    print(f"starting pid={os.getpid()}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    if os.environ.get("EXIT_AT_ONCE"):
        sys.exit(4)
    exit_if = os.environ.get("EXIT_IF_FILE")
    if exit_if and os.path.exists(exit_if):
        sys.exit(4)
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "time.sleep(3600)\n",
            ]
        )
        with open(os.environ["CHILD_PID_FILE"], "w") as f:
            f.write(str(child.pid))
    delay = float(os.environ.get("LISTEN_DELAY", "0"))
    if delay:
        time.sleep(delay)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    crash_after = os.environ.get("CRASH_AFTER")
    if crash_after:
        threading.Timer(float(crash_after), lambda: os._exit(3)).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
