"""Does a TLS context option change our new-handshake rate? (``python -m bench.tls_options``;
BENCHMARKS.md, "Built-in TLS").

Ours only, as ``bench.tls`` runs it (its namespaces, certificate and backend), once per
variant of the server context, all up at once and measured interleaved: wrk with a new
connection (a full TLS 1.3 handshake) per request, 32 clients. A variant is the context
``tenement.tls.certs.server_context`` makes, changed in the server process before it
starts (``variant`` below): only ``num_tickets`` for now, the TLS 1.3 session tickets
OpenSSL sends after each handshake (2 by default), which wrk never uses.

``--in-memory`` measures OpenSSL alone instead, without sockets (memory BIOs): the
server side's CPU time per full handshake for each variant, and per resumed handshake
(what a ticket buys a client that comes back).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import Procs
from bench.servers import free_port
from bench.tls import (
    DOMAIN,
    Target,
    certificate_pem,
    private_namespaces,
    wait_answering,
    write_project,
    wrk,
)

#: variant name -> session tickets per handshake (None: OpenSSL's default)
VARIANTS: dict[str, int | None] = {"tickets 2 (default)": None, "tickets 1": 1, "tickets 0": 0}


def variant(num_tickets: int, argv: list[str]) -> None:
    """Run ``tenement`` with ``argv``, every server context sending ``num_tickets``."""
    from tenement.tls import certs

    plain = certs.server_context

    def server_context(alpn: tuple[str, ...] = certs.ALPN_PROTOCOLS) -> ssl.SSLContext:
        context = plain(alpn)
        context.num_tickets = num_tickets
        return context

    certs.server_context = server_context
    sys.argv = ["ten", *argv]
    from tenement.cli import main

    main()


def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[float, ssl.SSLSession | None]:
    """One handshake over memory BIOs: (the server side's CPU seconds, the client's
    session, with the tickets it received)."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    ours = server.wrap_bio(to_server, server_out, server_side=True)
    theirs = client.wrap_bio(client_in, to_client, server_hostname=DOMAIN, session=session)
    cpu = 0.0
    client_done = server_done = False
    while not (client_done and server_done):
        if not client_done:
            try:
                theirs.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        to_server.write(to_client.read())
        if not server_done:
            started = time.process_time()
            try:
                ours.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            cpu += time.process_time() - started
        client_in.write(server_out.read())
    # the tickets come after the handshake: the client takes them on its first read
    with contextlib.suppress(ssl.SSLWantReadError):
        theirs.read(1)
    return cpu, theirs.session


def in_memory(runs: int, count: int = 400) -> None:
    """Server CPU per handshake (us) for each variant, and per resumed handshake."""
    from tenement.tls.certs import server_context

    with tempfile.TemporaryDirectory(prefix="bench-tls-options-") as scratch:
        path = Path(scratch) / "cert.pem"
        path.write_bytes(certificate_pem())
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        samples: dict[str, list[float]] = {}
        for _ in range(runs):
            for name, tickets in VARIANTS.items():
                server = server_context()
                server.load_cert_chain(path)
                if tickets is not None:
                    server.num_tickets = tickets
                total = sum(_handshake(server, client)[0] for _ in range(count))
                samples.setdefault(name, []).append(total / count * 1e6)
            server = server_context()
            server.load_cert_chain(path)
            resumed = 0.0
            for _ in range(count):
                _cpu, session = _handshake(server, client)
                resumed += _handshake(server, client, session)[0]
            samples.setdefault("resumed (tickets 2)", []).append(resumed / count * 1e6)
    medians = {name: round(statistics.median(runs), 1) for name, runs in samples.items()}
    print(json.dumps({"load_average": os.getloadavg()[0], "server_cpu_us": medians}, indent=2))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "variant":
        variant(int(sys.argv[2]), sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", default="1", help="ours: --workers")
    parser.add_argument("--in-memory", action="store_true", help="OpenSSL alone, no sockets")
    args = parser.parse_args()
    if args.in_memory:
        in_memory(args.runs)
        return
    private_namespaces(sys.argv[1:], "bench.tls_options")
    procs = Procs()
    samples: dict[str, list[float]] = {}
    loads = []
    root = str(Path(__file__).resolve().parents[1])
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tls-options-") as scratch:
            work = Path(scratch)
            pem = certificate_pem()
            targets = []
            for name, tickets in VARIANTS.items():
                https, http = free_port(), free_port()
                directory = work / name.split()[1]
                cache = write_project(directory, procs.marker, https, http, pem)
                (cache / "certs").mkdir(mode=0o700)
                (cache / "certs" / f"{DOMAIN}.pem").write_bytes(pem)
                launcher = ["-m", "tenement"]
                if tickets is not None:
                    launcher = ["-m", "bench.tls_options", "variant", str(tickets)]
                server = procs.start(
                    [
                        sys.executable,
                        *launcher,
                        "serve",
                        *("--bind", f"127.0.0.1:{https}"),
                        *("--bind", f"127.0.0.1:{http}"),
                        *("--workers", args.workers, "--log-level", "warning"),
                    ],
                    cwd=directory,
                    env={"PYTHONPATH": root},
                )
                targets.append(Target(name, https, "https", server.pid))
            for target in targets:
                wait_answering(target, work)
            for _ in range(args.runs):
                loads.append(os.getloadavg()[0])
                for target in targets:
                    result = wrk(target, work, connections=32, seconds=args.seconds, close=True)
                    assert result.errors == 0, (target.name, result)
                    samples.setdefault(target.name, []).append(result.rps)
    finally:
        procs.close()
    default = samples["tickets 2 (default)"]
    report = {
        name: {
            "median": statistics.median(runs),
            "per_round_over_default": [round(r / d, 2) for r, d in zip(runs, default, strict=True)],
        }
        for name, runs in samples.items()
    }
    print(json.dumps({"load_averages": loads, "handshakes_per_s": samples, **report}, indent=2))


if __name__ == "__main__":
    main()
