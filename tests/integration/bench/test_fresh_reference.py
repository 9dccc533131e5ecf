"""A fresh machine gets the reference binary: fetched with retries, unpacked once, found.

The package index is our own, on loopback (a test's traffic stays there), serving a small
wheel laid out as tenement 0.2.2's is; its first answer is a 404, the hiccup to ride out.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.refbin import OVERRIDE, SCRIPT, VERSION, ReferenceUnavailable, reference_binary

WHEEL_NAME = f"tenement-{VERSION}-py3-none-any.whl"


def small_wheel() -> bytes:
    """A wheel with tenement 0.2.2's name, metadata and ``ten`` script (a shell script)."""
    info = f"tenement-{VERSION}.dist-info"
    files = {
        SCRIPT: f"#!/bin/sh\necho 'tenement {VERSION}'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tenement\nVersion: {VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return buffer.getvalue()


class FlakyIndex(ThreadingHTTPServer):
    """A PEP 503 index with one project, whose first ``failures`` page requests get 404."""

    def __init__(self, wheel: bytes, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), IndexHandler)
        self.wheel, self.failures = wheel, failures
        self.page_requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/simple/"


class IndexHandler(BaseHTTPRequestHandler):
    server: FlakyIndex

    def do_GET(self) -> None:
        index = self.server
        if self.path.rstrip("/") == "/simple/tenement":
            index.page_requests += 1
            if index.page_requests <= index.failures:
                self.send_error(404)
                return
            digest = hashlib.sha256(index.wheel).hexdigest()
            link = f'<a href="/files/{WHEEL_NAME}#sha256={digest}">{WHEEL_NAME}</a>'
            self.reply("text/html", f"<html><body>{link}</body></html>".encode())
        elif self.path == f"/files/{WHEEL_NAME}":
            self.reply("application/octet-stream", index.wheel)
        else:
            self.send_error(404)

    def reply(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyIndex]:
    server = FlakyIndex(small_wheel(), failures=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # pip reads only this index: no config files, no find-links, no cache of earlier runs
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv(OVERRIDE, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", server.url)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_fresh_reference_is_fetched_despite_a_hiccup_then_found_offline(
    tmp_path: Path, index: FlakyIndex
) -> None:
    binary = reference_binary(tmp_path, backoff=0)

    assert index.page_requests == 2  # the 404, then the page
    run = subprocess.run([str(binary)], capture_output=True, text=True, check=True)
    assert run.stdout == f"tenement {VERSION}\n"
    index.shutdown()  # the cache is enough from now on: no index needed
    assert reference_binary(tmp_path, download=False) == binary
    assert reference_binary(tmp_path, backoff=0) == binary


def test_fresh_reference_download_gives_up_with_a_clear_error(
    tmp_path: Path, index: FlakyIndex
) -> None:
    index.failures = 10
    with pytest.raises(ReferenceUnavailable, match=r"after 2 attempts.*PIP_INDEX_URL"):
        reference_binary(tmp_path, attempts=2, backoff=0)
    assert index.page_requests == 2


def test_fresh_cache_missing_without_download_says_how_to_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENEMENT_REF_BIN", raising=False)  # the override is not the cache
    with pytest.raises(ReferenceUnavailable, match=r"\./dev test.*python -m bench\.refbin"):
        reference_binary(tmp_path, download=False)
