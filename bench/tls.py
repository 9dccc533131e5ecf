"""Built-in TLS, side by side with tenement 0.2.2 in TLS mode: HTTPS proxy throughput
with keep-alive, new handshakes per second, and the latency TLS adds on one connection
(``python -m bench.tls``; BENCHMARKS.md).

No CA is involved. The reference orders only from Let's Encrypt (its directory is fixed),
so it is given its certificate the way it keeps one: in its cache directory, under the
name rustls-acme gives it, where it loads it at start ("DeployedCachedCert") without
ordering. Ours loads the same kind of certificate from ``cache_dir``. Both serve
``bench.test`` with one ECDSA P-256 certificate made here (valid 90 days, so that
neither wants to renew), TLS 1.3.

It runs as root in a network and mount namespace of its own: loopback only, the
reference's tenant ports collide with no one's, and ``bench.test`` resolves to
127.0.0.1 through a private /etc/hosts (wrk takes its SNI from the URL). wrk does not
verify certificates. The servers are up at once and measured interleaved.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import shutil
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
from bench.servers import APPS, cpu_seconds, free_port, serving_pids, tenant_python

DOMAIN = "bench.test"
HOST = f"t1.fast.{DOMAIN}"
#: the reference's (rustls-acme's) directory, part of its cached certificate's name
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


def certificate_pem() -> bytes:
    """A self-signed certificate for the domain, with its key first (both caches' format)."""
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
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def rustls_acme_cert_name(domains: list[str], directory: str) -> str:
    """The file rustls-acme's DirCache keeps a certificate in."""
    digest = hashlib.sha256()
    for domain in domains:
        digest.update(domain.encode())
        digest.update(b"\0")
    digest.update(directory.encode())
    return "cached_cert_" + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def write_project(directory: Path, marker: str, https: int, http: int, pem: bytes) -> Path:
    """tenement.toml with TLS on ``https``/``http``; returns the cache dir (filled by the
    caller, in its server's format)."""
    cache = directory / "acme"
    cache.mkdir(parents=True, mode=0o700)
    (directory / "tenement.toml").write_text(
        f"""[settings]
data_dir = "data"
tenant_users = false

[settings.tls]
enabled = true
acme_email = "ops@{DOMAIN}"
domain = "{DOMAIN}"
cache_dir = "{cache}"
https_port = {https}
http_port = {http}
# never reached: the certificate in cache_dir is valid for months
directory = "https://127.0.0.1:9/directory"

[service.fast]
command = "{tenant_python()} {APPS}/fast_backend.py {marker}"
isolation = "process"
health = "/health"

[instances]
fast = ["t1"]
"""
    )
    return cache


def private_namespaces(argv: list[str], module: str = "bench.tls") -> None:
    """Re-run ``python -m module`` in network and mount namespaces of its own, loopback
    up and ``bench.test`` resolving to 127.0.0.1 (root only; otherwise it cannot run)."""
    if os.environ.get("BENCH_NETNS"):
        return
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        raise SystemExit(f"{module} needs root, unshare and ip (namespaces of its own)")
    hosts = Path(tempfile.mkdtemp(prefix="bench-tls-hosts-")) / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {DOMAIN} {HOST}\n")
    os.environ["BENCH_NETNS"] = "1"
    # unshare makes the new mount namespace private: the bind mount stays in it
    command = (
        f"ip link set lo up && mount --bind {hosts} /etc/hosts && "
        f'exec {sys.executable} -m {module} "$@"'
    )
    os.execvp("unshare", ["unshare", "--net", "--mount", "--", "sh", "-c", command, "sh", *argv])


@attrs.frozen
class Target:
    name: str
    port: int
    scheme: str
    #: the server's main process: its CPU, and its workers', is measured (not the tenant's)
    pid: int


def wait_answering(target: Target, work: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            result = wrk(target, work, connections=1, seconds=1)
            if result.rps > 0 and result.errors == 0:
                return
        except (subprocess.CalledProcessError, StopIteration):
            pass  # not up yet: wrk failed, or printed no summary
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name} does not answer on {target.port}")


def wrk(target: Target, work: Path, **options: Any) -> WrkResult:
    return run_wrk(target.port, HOST, work=work, scheme=target.scheme, address=DOMAIN, **options)


def measure_once(target: Target, work: Path, seconds: float) -> dict[str, float]:
    keep_alive = wrk(target, work, connections=32, seconds=seconds)
    pids = serving_pids(target.pid)
    used = cpu_seconds(pids)
    new_connections = wrk(target, work, connections=32, seconds=seconds, close=True)
    used = cpu_seconds(pids) - used
    single = wrk(target, work, connections=1, seconds=seconds)
    return {
        "keep_alive_rps": keep_alive.rps,
        "new_connections_per_s": new_connections.rps,
        # what a new connection costs the server, whatever else the machine is doing
        "server_cpu_us_per_new_connection": 1e6 * used / (new_connections.rps * seconds),
        "one_connection_p50_ms": single.p50_ms,
        "errors": keep_alive.errors + new_connections.errors + single.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", default="0", help="ours: --workers (0: one per CPU)")
    args = parser.parse_args()
    private_namespaces(sys.argv[1:])
    procs = Procs()
    samples: dict[str, list[dict[str, float]]] = {}
    loads = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tls-") as scratch:
            work = Path(scratch)
            pem = certificate_pem()
            # the reference first: it hands out tenant ports from 30000 without looking
            ref_https, ref_http = free_port(), free_port()
            ref_dir = work / "reference"
            cache = write_project(ref_dir, procs.marker, ref_https, ref_http, pem)
            (cache / rustls_acme_cert_name([DOMAIN], LETS_ENCRYPT)).write_bytes(pem)
            reference = procs.start(
                [
                    str(reference_binary(download=False)),
                    *("serve", "--tls", "--email", f"ops@{DOMAIN}", "-d", DOMAIN),
                ],
                cwd=ref_dir,
                env={"RUST_LOG": "warn"},
            )
            plain, https, http = free_port(), free_port(), free_port()
            ours_dir = work / "ours"
            cache = write_project(ours_dir, procs.marker, https, http, pem)
            (cache / "certs").mkdir(mode=0o700)
            (cache / "certs" / f"{DOMAIN}.pem").write_bytes(pem)
            ours = procs.start(
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
            targets = [
                Target("ours https", https, "https", ours.pid),
                Target("reference https", ref_https, "https", reference.pid),
                Target("ours http", plain, "http", ours.pid),
            ]
            for target in targets:
                wait_answering(target, work)
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
