"""A hostile tenant for the isolation tests: tries to read what is not its own.

On $PORT it answers GET with JSON: its uid, gid, groups, the TENEMENT_* variables it
inherited, whether it could write and read back a file in its own $HOME, and for each
path in $SPY_TARGETS (``:``-separated; ``{ppid}`` is replaced by its parent's pid, the
server that started it) what reading it gave: ``"read"`` or the error's name. A target
ending in ``/`` is listed instead of read. Standard library only: it runs under the
system's python3 as another user.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def attempt(target: str) -> str:
    try:
        if target.endswith("/"):
            os.listdir(target)
        else:
            with open(target, "rb") as file:
                file.read(1)
    except OSError as exc:
        return type(exc).__name__
    return "read"


def own_home() -> str:
    path = os.path.join(os.environ["HOME"], "mine.txt")
    try:
        with open(path, "w") as file:
            file.write("mine")
        with open(path) as file:
            return file.read()
    except OSError as exc:
        return type(exc).__name__


def report() -> dict:
    ppid = str(os.getppid())
    targets = os.environ.get("SPY_TARGETS", "").replace("{ppid}", ppid).split(":")
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "server": int(ppid),
        "tenement_env": sorted(k for k in os.environ if k.startswith("TENEMENT_")),
        "home": own_home(),
        "reads": {target: attempt(target) for target in targets if target},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps(report()).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


print("spy listening", flush=True)  # something in its own log, for the others to try
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
