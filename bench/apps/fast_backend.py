"""A fast HTTP/1.1 backend: one epoll loop, keep-alive, a fixed 200 answer to every request.

Listens on 127.0.0.1:$PORT. It is the proxy benchmark's limit: wrk against it directly
shows what the machine can do without a proxy in between. Requests may be pipelined;
bodies are honoured by Content-Length (chunked bodies are not needed here).
"""

import os
import select
import socket

BODY = b"ok\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
CLOSE_RESPONSE = RESPONSE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


def answers(buffer: bytearray) -> tuple[bytes, bool]:
    """Consume every complete request in ``buffer``; return the replies and whether to close."""
    out = []
    close = False
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            break
        head = bytes(buffer[:end]).lower()
        length = 0
        marker = head.find(b"content-length:")
        if marker >= 0:
            length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
        if len(buffer) < end + 4 + length:
            break
        del buffer[: end + 4 + length]
        if b"connection: close" in head or head.split(b"\r\n", 1)[0].endswith(b"http/1.0"):
            out.append(CLOSE_RESPONSE)
            close = True
            break
        out.append(RESPONSE)
    return b"".join(out), close


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ["PORT"])))
    listener.listen(4096)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, tuple[socket.socket, bytearray]] = {}
    while True:
        for fd, _events in poller.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[conn.fileno()] = (conn, bytearray())
                    poller.register(conn.fileno(), select.EPOLLIN)
                continue
            conn, buffer = conns[fd]
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            close = not data
            if data:
                buffer += data
                reply, close = answers(buffer)
                if reply:
                    try:
                        conn.sendall(reply)
                    except OSError:
                        close = True
            if close:
                poller.unregister(fd)
                del conns[fd]
                conn.close()


if __name__ == "__main__":
    main()
