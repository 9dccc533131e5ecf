"""A tiny server for the serving tests: run by tests/fdholder.py on inherited sockets.

``python serving_app.py [--naive]`` serves on the sockets in ``LISTEN_FDS``:
``GET /`` answers ``ok <pid>``, ``GET /slow`` sleeps 1 s first. ``READY=1`` once
accepting, ``STOPPING=1`` on SIGTERM/SIGINT/SIGUSR2, then drains and exits 0.
``--naive`` serves with plain ``hypercorn.trio.serve`` instead (to show what it loses);
``--grace SECONDS`` bounds the drain (default 10).
"""

from __future__ import annotations

import os
import sys

import trio

from tenement.server.handoff import make_config
from tenement.server.http import serve_http
from tenement.systemd import Lifecycle, Notifier, listen_sockets, open_lifecycle_signals

NOTIFY_SOCKET = os.environ.get("NOTIFY_SOCKET", "")


async def app(scope, receive, send):
    assert scope["type"] == "http"
    if scope["path"] == "/slow":
        Notifier({"NOTIFY_SOCKET": NOTIFY_SOCKET}).status("slow request started")
        await trio.sleep(1)
    body = f"ok {os.getpid()}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def main(naive: bool, grace_seconds: float) -> None:
    sockets = [listen.sock for listen in listen_sockets(os.environ)]
    notifier = Notifier(os.environ)
    shutdown = trio.Event()
    async with open_lifecycle_signals() as commands, trio.open_nursery() as nursery:
        if naive:
            import hypercorn.trio

            config = make_config()
            config.bind = [f"fd://{sock.fileno()}" for sock in sockets]
            config.graceful_timeout = grace_seconds
            await nursery.start(
                lambda task_status: hypercorn.trio.serve(
                    app, config, shutdown_trigger=shutdown.wait, task_status=task_status
                )
            )
        else:
            await nursery.start(
                lambda task_status: serve_http(
                    app,
                    sockets,
                    shutdown=shutdown,
                    grace_seconds=grace_seconds,
                    task_status=task_status,
                )
            )
        notifier.ready()
        async for command in commands:
            if command in (Lifecycle.STOP, Lifecycle.RESTART):
                notifier.stopping()
                shutdown.set()
                break


if __name__ == "__main__":
    args = sys.argv[1:]
    grace = float(args[args.index("--grace") + 1]) if "--grace" in args else 10.0
    trio.run(main, "--naive" in args, grace)
