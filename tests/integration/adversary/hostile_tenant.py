"""A tenant that answers badly on purpose, for the adversary tests (run by ``ten serve``
on ``$PORT``). The request path picks the misbehaviour; ``/fine`` answers correctly.

Standard library only: raw bytes, so that every answer is exactly as broken as written.
"""

from __future__ import annotations

import os
import socket
import threading
import time

HUGE = b"x" * (256 * 1024)

#: path -> the bytes sent back (then the connection is closed), or None: see serve()
ANSWERS: dict[bytes, bytes | None] = {
    b"/fine": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine",
    # two framings at once: the response-side twin of request smuggling
    b"/cl-te": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    ),
    b"/two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 7\r\n\r\nabcdefg",
    b"/cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 3, 7\r\n\r\nabcdefg",
    b"/cl-negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc",
    b"/cl-plus": b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
    b"/te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    b"/bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"/huge-head": b"HTTP/1.1 200 OK\r\nX-Huge: " + HUGE + b"\r\nContent-Length: 0\r\n\r\n",
    b"/many-headers": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
    + b"Content-Length: 0\r\n\r\n",
    b"/garbage": b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n",
    b"/bad-status": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    b"/http09": b"hello without a head",
    b"/header-injection": (
        b"HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n"
    ),
    b"/nul-header": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
    b"/space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc",
    b"/close-now": b"",
    b"/close-mid-body": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b",
    b"/close-mid-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nshort",
    b"/never": None,
    b"/head-then-never": None,
}


def read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError
        data += chunk
    return data


def serve(conn: socket.socket) -> None:
    try:
        while True:
            head = read_head(conn)
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            path = target.split(b"?")[0]
            if path == b"/never":
                time.sleep(3600)
            if path == b"/head-then-never":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                time.sleep(3600)
            answer = ANSWERS.get(path, ANSWERS[b"/fine"])
            if answer:
                conn.sendall(answer)
            if path != b"/fine" and path in ANSWERS:
                break  # every misbehaviour ends its connection
    except OSError:
        pass
    finally:
        conn.close()


def main() -> None:
    listener = socket.create_server(("127.0.0.1", int(os.environ["PORT"])), backlog=1024)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
