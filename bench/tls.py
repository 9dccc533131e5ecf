"""Built-in TLS: HTTPS proxy throughput with keep-alive, new handshakes per second, and
the latency TLS adds on one connection (``python -m bench.tls``; BENCHMARKS.md).

The reference's TLS mode cannot run here: it orders only from Let's Encrypt (its
directory is fixed), so it cannot be pointed at a local CA. Its figures are therefore
its plain HTTP ones, measured in the same run, and ours are given over HTTPS and plain
HTTP side by side. Our server loads a certificate placed in ``cache_dir`` (made here,
valid two days), so no CA is involved either; wrk connects to 127.0.0.1 (its SNI is
then the address, and the server presents the domain's certificate) and sends the
tenant's Host. Loopback only, in a network namespace of its own (as ``bench.run``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.load import WrkResult, run_wrk
from bench.procs import Procs
from bench.refbin import reference_binary
from bench.run import private_network
from bench.servers import APPS, free_port, tenant_python

DOMAIN = "bench.test"
HOST = f"t1.fast.{DOMAIN}"


def certificate_pem() -> bytes:
    """A self-signed certificate for the domain, with its key first (cache_dir's format)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def write_project(directory: Path, marker: str, ports: tuple[int, int] | None) -> None:
    tls = ""
    if ports is not None:
        tls = f"""
[settings.tls]
enabled = true
acme_email = "ops@{DOMAIN}"
domain = "{DOMAIN}"
https_port = {ports[0]}
http_port = {ports[1]}
# never reached: the certificate in cache_dir is valid for days
directory = "https://127.0.0.1:9/directory"
"""
        certs = directory / "data" / "acme" / "certs"
        certs.mkdir(parents=True, mode=0o700)
        (certs / f"{DOMAIN}.pem").write_bytes(certificate_pem())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenement.toml").write_text(
        f"""[settings]
data_dir = "data"
tenant_users = false
{tls}
[service.fast]
command = "{tenant_python()} {APPS}/fast_backend.py {marker}"
isolation = "process"
health = "/health"

[instances]
fast = ["t1"]
"""
    )


def wait_answering(port: int, host: str, scheme: str, work: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            result = run_wrk(port, host, connections=1, seconds=1, work=work, scheme=scheme)
            if result.rps > 0 and result.errors == 0:
                return
        except (subprocess.CalledProcessError, StopIteration):
            pass  # not up yet: wrk failed, or printed no summary
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers {scheme} on {port}")


@attrs.frozen
class Target:
    name: str
    port: int
    host: str
    scheme: str


def measure_once(target: Target, work: Path, seconds: float) -> dict[str, float]:
    def wrk(**options: Any) -> WrkResult:
        return run_wrk(
            target.port, target.host, seconds=seconds, work=work, scheme=target.scheme, **options
        )

    keep_alive = wrk(connections=32)
    new_connections = wrk(connections=32, close=True)
    single = wrk(connections=1)
    return {
        "keep_alive_rps": keep_alive.rps,
        "new_connections_per_s": new_connections.rps,
        "one_connection_p50_ms": single.p50_ms,
        "errors": keep_alive.errors + new_connections.errors + single.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", default="0", help="ours: --workers (0: one per CPU)")
    args = parser.parse_args()
    # the reference hands out tenant ports others may hold: a namespace of our own
    private_network(sys.argv[1:], module="bench.tls")
    procs = Procs()
    samples: dict[str, list[dict[str, float]]] = {}
    loads = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tls-") as scratch:
            work = Path(scratch)
            ours_dir = work / "ours"
            plain, https, http = free_port(), free_port(), free_port()
            write_project(ours_dir, procs.marker, (https, http))
            procs.start(
                [
                    sys.executable,
                    "-m",
                    "tenement",
                    "serve",
                    *("--bind", f"127.0.0.1:{plain}"),
                    *("--bind", f"127.0.0.1:{https}"),
                    *("--bind", f"127.0.0.1:{http}"),
                    *("--workers", args.workers, "--log-level", "warning"),
                ],
                cwd=ours_dir,
                env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )
            reference_dir = work / "reference"
            write_project(reference_dir, procs.marker, None)
            reference = free_port()
            # as bench.run runs it: the default domain, localhost
            procs.start(
                [str(reference_binary(download=False)), "serve", "--port", str(reference)],
                cwd=reference_dir,
                env={"RUST_LOG": "warn"},
            )
            targets = [
                Target("ours https", https, HOST, "https"),
                Target("ours http", plain, HOST, "http"),
                Target("reference http", reference, "t1.fast.localhost", "http"),
            ]
            for target in targets:
                wait_answering(target.port, target.host, target.scheme, work)
            # interleaved, so that the machine's other work weighs on each alike
            for _ in range(args.runs):
                loads.append(os.getloadavg()[0])
                for target in targets:
                    samples.setdefault(target.name, []).append(
                        measure_once(target, work, args.seconds)
                    )
    finally:
        procs.close()
    results = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    print(json.dumps({"load_averages": loads, "medians": results, "runs": samples}, indent=2))


if __name__ == "__main__":
    main()
