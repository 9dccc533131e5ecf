"""A tiny tenant app for tenement's demo: one notes list per tenant.

Standard library only. It listens on 127.0.0.1:$PORT (tenement sets PORT) and keeps the
tenant's notes in $DATA_DIR/notes.txt (examples/tenement.toml sets DATA_DIR to the
instance's own directory, {data_dir}/{name}/{id}).

    GET /health   200 "ok"
    GET /         the notes, one per line
    POST /        append the request body as a note; 201 and the note's number

Run it by hand with: PORT=8000 DATA_DIR=/tmp/notes TENANT=alice python3 examples/notes_app.py
"""

from __future__ import annotations

import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_NOTE_BYTES = 64 * 1024


class NotesHandler(BaseHTTPRequestHandler):
    server: NotesServer

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, b"ok\n")
        elif self.path == "/":
            self._reply(200, self.server.read_notes())
        else:
            self._reply(404, b"not found\n")

    def do_POST(self) -> None:
        if self.path != "/":
            self._reply(404, b"not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_NOTE_BYTES:
            self._reply(413, f"a note is at most {MAX_NOTE_BYTES} bytes\n".encode())
            return
        note = self.rfile.read(length).decode("utf-8", "replace").replace("\n", " ").strip()
        if not note:
            self._reply(400, b"empty note: send the text as the request body\n")
            return
        number = self.server.add_note(note)
        self._reply(201, f"note {number} saved for {self.server.tenant}\n".encode())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


class NotesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, data_dir: Path, tenant: str) -> None:
        super().__init__(("127.0.0.1", port), NotesHandler)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.notes_file = data_dir / "notes.txt"
        self.tenant = tenant
        self.lock = threading.Lock()

    def read_notes(self) -> bytes:
        with self.lock:
            try:
                return self.notes_file.read_bytes()
            except FileNotFoundError:
                return b""

    def add_note(self, note: str) -> int:
        with self.lock:
            with self.notes_file.open("a", encoding="utf-8") as notes:
                notes.write(note + "\n")
            with self.notes_file.open(encoding="utf-8") as notes:
                return sum(1 for _ in notes)


def main() -> int:
    try:
        port = int(os.environ["PORT"])
        data_dir = Path(os.environ["DATA_DIR"])
    except (KeyError, ValueError) as exc:
        print(f"notes_app: set PORT (a number) and DATA_DIR ({exc!r})", file=sys.stderr)
        return 2
    tenant = os.environ.get("TENANT", "default")
    server = NotesServer(port, data_dir, tenant)
    print(f"notes for {tenant} on 127.0.0.1:{port}, stored in {server.notes_file}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
