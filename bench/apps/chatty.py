"""Writes $LINES log lines to stdout as fast as it can, then a marker line, then idles.

Also listens on $PORT (answering 200) so both servers see it as alive and healthy.
Every line carries its number (``needle-<n>``) so searches can target one line.
"""

import os
import socket
import sys

lines = int(os.environ.get("LINES", "1000000"))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(64)
out = sys.stdout
chunk = []
for n in range(lines):
    chunk.append(f"request served path=/items/{n % 977} status=200 needle-{n}\n")
    if len(chunk) == 1000:
        out.write("".join(chunk))
        chunk.clear()
out.write("".join(chunk))
out.write("chatty-done-marker\n")
out.flush()
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    except OSError:
        pass
    c.close()
