"""tenement.tls.challenges: an answer one process publishes is served by another (a
second Challenges on the same directory), until it is withdrawn; names from the network
never reach outside the directory."""

from __future__ import annotations

import os
import ssl
import threading
import time
from pathlib import Path

import pytest

from tenement.tls.challenges import STALE_SECONDS, Challenges
from tenement.tls.issuer import alpn_certificate

HOST = "alice.notes.example.com"


def test_an_http_answer_is_served_by_every_process_until_withdrawn(tmp_path: Path) -> None:
    ordering, serving = Challenges(tmp_path), Challenges(tmp_path)
    ordering.publish_http("tok-EN_1", "tok-EN_1.thumbprint")
    assert serving.http_answer("tok-EN_1") == "tok-EN_1.thumbprint"
    assert (tmp_path / "http" / "tok-EN_1").stat().st_mode & 0o777 == 0o600
    ordering.withdraw_http("tok-EN_1")
    assert serving.http_answer("tok-EN_1") is None


def test_an_alpn_answer_is_presented_by_every_process_until_withdrawn(tmp_path: Path) -> None:
    ordering, serving = Challenges(tmp_path), Challenges(tmp_path)
    assert serving.alpn_context(HOST) is None
    ordering.publish_alpn(HOST, *alpn_certificate(HOST, "token.thumbprint"))
    context = serving.alpn_context(HOST)
    assert isinstance(context, ssl.SSLContext)
    ordering.withdraw_alpn(HOST)
    assert serving.alpn_context(HOST) is None


@pytest.mark.parametrize("token", ["../../certs/x", "a/b", "", ".", "a b", "x" * 300])
def test_a_token_that_is_not_base64url_names_no_file(tmp_path: Path, token: str) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "x").write_text("secret")
    challenges = Challenges(tmp_path / "challenges")
    assert challenges.http_answer(token) is None
    with pytest.raises(ValueError, match="not base64url"):
        challenges.publish_http(token, "answer")


@pytest.mark.parametrize("host", ["../../certs/x", "localhost", "a/b.example.com", "A..b"])
def test_a_server_name_that_is_no_host_name_names_no_file(tmp_path: Path, host: str) -> None:
    assert Challenges(tmp_path).alpn_context(host) is None


def test_answers_left_by_a_killed_process_are_removed_once_stale(tmp_path: Path) -> None:
    challenges = Challenges(tmp_path)
    challenges.publish_http("old", "old.thumbprint")
    challenges.publish_http("new", "new.thumbprint")
    challenges.publish_alpn(HOST, *alpn_certificate(HOST, "token.thumbprint"))
    long_ago = time.time() - STALE_SECONDS - 60
    os.utime(tmp_path / "http" / "old", (long_ago, long_ago))
    os.utime(tmp_path / "alpn" / f"{HOST}.pem", (long_ago, long_ago))
    challenges.remove_stale()
    assert challenges.http_answer("old") is None
    assert challenges.alpn_context(HOST) is None
    assert challenges.http_answer("new") == "new.thumbprint"


def answer_within_deadline(challenges: Challenges, token: str, fifo: Path) -> str | None:
    """``http_answer`` in a thread with a deadline: a read of a FIFO would block for good
    (the thread is set free by a writer opening it)."""
    answers: list[str | None] = []
    reader = threading.Thread(target=lambda: answers.append(challenges.http_answer(token)))
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
        pytest.fail(f"looking up {token!r} blocked on a FIFO")
    return answers[0]


def test_only_a_regular_file_of_ours_is_an_answer(tmp_path: Path) -> None:
    # planted at names a client may ask for: none of them is served, none blocks
    secret = tmp_path / "secret"
    secret.write_text("root:$6$hash\n")
    challenges = Challenges(tmp_path / "challenges")
    challenges.publish_http("real", "real.thumbprint")
    http = tmp_path / "challenges" / "http"
    (http / "link").symlink_to(secret)
    (http / "dir").mkdir()
    os.mkfifo(http / "fifo")
    (http / "huge").write_bytes(b"x" * 100_000)
    (http / "binary").write_bytes(b"\xff\xfe")
    for token in ("link", "dir", "fifo", "huge", "binary"):
        assert answer_within_deadline(challenges, token, http / "fifo") is None, token
    assert challenges.http_answer("real") == "real.thumbprint"
    alpn = tmp_path / "challenges" / "alpn"
    alpn.mkdir()
    os.mkfifo(alpn / f"{HOST}.pem")
    (alpn / "dir.example.com.pem").mkdir()
    assert challenges.alpn_context(HOST) is None
    assert challenges.alpn_context("dir.example.com") is None
