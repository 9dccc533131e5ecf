"""A tenant that writes down every byte it reads, for the adversary tests.

Run by ``ten serve`` (``$PORT``); ``$RECORD`` names a file that gets one JSON line per
event: ``accept`` (a new connection), ``data`` (bytes read from it, raw, as latin-1),
``request`` (a request it framed), ``close``. Tests read that file to prove what reached
the tenant, and how many connections the proxy opened, whatever the proxy says it did.

Standard library only, and framing of its own (not h11, not tenement.wire): it must not
share a parser with the code under test. It answers every request 200 with a JSON body
naming the connection, the request line, the headers and the body it read; a request
for ``/early`` is answered before its body is read (as many servers answer a GET), and
the body is read past after.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading

RECORD = os.environ["RECORD"]
_lock = threading.Lock()
_ids = itertools.count(1)


def record(**event: object) -> None:
    line = json.dumps(event) + "\n"
    with _lock, open(RECORD, "a", encoding="utf-8") as out:
        out.write(line)


class Closed(Exception):
    pass


class Reader:
    def __init__(self, conn: socket.socket, conn_id: int) -> None:
        self.conn = conn
        self.id = conn_id
        self.buffer = b""

    def fill(self) -> None:
        data = self.conn.recv(65536)
        record(event="data", conn=self.id, raw=data.decode("latin-1"))
        if not data:
            raise Closed
        self.buffer += data

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            self.fill()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def read_head(reader: Reader) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    line = reader.line()
    headers = []
    while True:
        field = reader.line()
        if not field:
            break
        name, _, value = field.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return line, headers


def read_body(reader: Reader, headers: list[tuple[bytes, bytes]]) -> bytes:
    names = dict(headers)
    if b"chunked" in names.get(b"transfer-encoding", b"").lower():
        body = b""
        while True:
            size = int(reader.line().split(b";")[0], 16)
            if size == 0:
                while reader.line():
                    pass
                break
            body += reader.exactly(size)
            reader.exactly(2)
    else:
        body = reader.exactly(int(names.get(b"content-length", b"0")))
    return body


def answer(
    conn: socket.socket, conn_id: int, line: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    data = json.dumps(
        {
            "conn": conn_id,
            "line": line.decode("latin-1"),
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
            "body": body.decode("latin-1"),
        }
    ).encode()
    # HEAD: the length a GET would get, and no body (RFC 9110 9.3.2)
    data_sent = b"" if line.startswith(b"HEAD ") else data
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(data), data_sent)
    )


def serve(conn: socket.socket) -> None:
    conn_id = next(_ids)
    record(event="accept", conn=conn_id)
    reader = Reader(conn, conn_id)
    try:
        while True:
            line, headers = read_head(reader)
            early = line.split(b" ")[1:2] == [b"/early"]
            if early:  # as many servers do: answer first, read (past) the body after
                answer(conn, conn_id, line, headers, b"")
            body = read_body(reader, headers)
            record(
                event="request",
                conn=conn_id,
                line=line.decode("latin-1"),
                headers=[[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
                body=body.decode("latin-1"),
            )
            if not early:
                answer(conn, conn_id, line, headers, body)
            if dict(headers).get(b"connection", b"").lower() == b"close":
                break
    except (Closed, OSError, ValueError):
        pass  # the proxy left, or sent what this tenant cannot frame: drop the connection
    finally:
        record(event="close", conn=conn_id)
        conn.close()


def main() -> None:
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])), backlog=1024)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
