"""The HTTP client every server-talking command uses: token, server URL, errors.

Token resolution follows the reference (``client.rs::ApiClient::from_args``):
``--token``, then ``TENEMENT_TOKEN``, then ``{data_dir}/api_token``, where data_dir comes
from ``--data-dir``/``TENEMENT_DATA_DIR`` or else from tenement.toml. Every failure is a
:class:`ClientError` whose message says what went wrong and what to do; the root group
prints it as ``Error: ...`` and exits 1.

This module imports httpx; commands import it inside their callbacks so that
``ten --version`` does not pay for it.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from tenement.cli.context import CliContext
from tenement.errors import TenementError


def _import_httpx_sync_only():  # type: ignore[no-untyped-def]
    """Import httpx without letting httpcore pull in trio, anyio and h2.

    httpcore imports trio and anyio (when installed) at import time only for its async
    locks, and h2 only for HTTP/2; this synchronous HTTP/1.1 client uses none of them, and
    trio alone costs ~50-150 ms of CLI start-up. While httpcore is first imported, those
    not already loaded are masked so httpcore records them as absent (its documented
    optional extras); they stay importable for anything else afterwards. A process that
    had already imported them keeps httpcore's full async and HTTP/2 support.

    rich and pygments are masked too: httpx imports them (when installed, e.g. with
    pytest) only for its own ``httpx`` command line, which this client never runs
    (~20-40 ms).
    """
    if "httpcore" in sys.modules:
        import httpx

        return httpx
    masked = [
        name for name in ("trio", "anyio", "h2", "rich", "pygments") if name not in sys.modules
    ]
    for name in masked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import httpcore  # noqa: F401  (httpx imports it lazily, on the first Client)
        import httpx
    except ImportError:
        # A release that needs them after all: pay for the full import rather than fail.
        _unmask(masked)
        for partial in [name for name in sys.modules if name.startswith(("httpcore", "httpx"))]:
            del sys.modules[partial]
        import httpx
    finally:
        _unmask(masked)
    return httpx


def _unmask(names: list[str]) -> None:
    for name in names:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


httpx = _import_httpx_sync_only()

log = logging.getLogger(__name__)

TOKEN_FILE = "api_token"
#: how long an ordinary request may take (spawn and restart wait for the instance)
DEFAULT_TIMEOUT = 120.0
CONNECT_TIMEOUT = 5.0
GET_A_TOKEN = "Run `ten token-gen` first to create a token."


class ClientError(TenementError):
    """A client command failed; exit 1 like the reference."""

    exit_code = 1


class ServerUnreachable(ClientError):
    """No connection to the server (refused, DNS, reset)."""


class Unauthorized(ClientError):
    """The server answered 401: the token is missing, wrong or revoked."""


class ServerError(ClientError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class Token:
    """An API token and where it came from (named in error messages)."""

    value: str = attrs.field(repr=False)
    origin: str


def _token_file_path(cli: CliContext, environ: Mapping[str, str], cwd: Path) -> Path:
    """Where ``api_token`` lives: --data-dir/TENEMENT_DATA_DIR, else tenement.toml's data_dir."""
    if cli.data_dir is not None:
        if str(cli.data_dir).startswith("~"):
            raise ClientError(
                f"--data-dir/TENEMENT_DATA_DIR '{cli.data_dir}' starts with '~', which is not "
                "expanded; give the full path (e.g. $HOME/...)"
            )
        data_dir = cli.data_dir if cli.data_dir.is_absolute() else cwd / cli.data_dir
        return data_dir / TOKEN_FILE
    from tenement.config import ConfigError, load_config

    try:
        config = load_config(path=cli.config_path, environ=environ, cwd=cwd)
    except ConfigError as exc:
        raise ClientError(
            "Could not load tenement.toml. Are you in a tenement project directory?\n"
            f"  cause: {exc.message}\n"
            "Pass the token with --token or TENEMENT_TOKEN, or point at the data directory "
            "with --data-dir."
        ) from exc
    return Path(config.settings.data_dir) / TOKEN_FILE


def resolve_token(cli: CliContext, *, environ: Mapping[str, str], cwd: Path) -> Token:
    """Find the API token: --token, TENEMENT_TOKEN, then ``{data_dir}/api_token``.

    Raises:
        ClientError: the config is needed but missing or invalid; the token is empty;
            or no token was found (the message lists the three places tried).
    """
    if cli.token is not None:
        found = Token(cli.token.strip(), "--token")
    elif "TENEMENT_TOKEN" in environ:
        found = Token(environ["TENEMENT_TOKEN"].strip(), "TENEMENT_TOKEN")
    else:
        path = _token_file_path(cli, environ, cwd)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ClientError(
                "No API token found. Tried:\n- --token flag\n- TENEMENT_TOKEN env var\n"
                f"- {path}\n\n{GET_A_TOKEN}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientError(f"Could not read the API token file {path}: {exc}") from exc
        found = Token(text.strip(), str(path))
    if not found.value:
        raise ClientError(
            f"API token is empty (from {found.origin}). Run `ten token-gen` to create a new token."
        )
    return found


def _error_message(response: httpx.Response) -> str:
    """The server's ``{"error": ...}`` text, else ``Server returned <status> <reason>``."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return f"Server returned {response.status_code} {response.reason_phrase}".rstrip()


def _tls_verification(server: str) -> ssl.SSLContext | bool:
    """The system's CA store for https (honours SSL_CERT_FILE/SSL_CERT_DIR).

    For plain http nothing is verified, so no certificates are loaded: httpx's default
    (certifi's bundle) costs about 0.1 s of every command's start.
    """
    if server.lower().startswith("https:"):
        return ssl.create_default_context()
    return False


class ApiClient:
    """Talks to one ``ten serve`` with one token. Use as a context manager.

    Every method raises :class:`ClientError` (or a subclass) with a message for the user;
    httpx exceptions never escape.
    """

    def __init__(self, server: str, token: Token, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token.value}"},
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            verify=_tls_verification(self.server),
        )

    @classmethod
    def from_context(cls, cli: CliContext, *, environ: Mapping[str, str], cwd: Path) -> ApiClient:
        """A client for the server and token the global options and environment name."""
        return cls(cli.server, resolve_token(cli, environ=environ, cwd=cwd))

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _transport_error(self, exc: httpx.TransportError, timeout: float | None) -> ClientError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerUnreachable(
                f"Failed to connect to server at {self.server}\n"
                f"  cause: {exc or type(exc).__name__}\n"
                "Is `ten serve` running? Choose the server with --server or TENEMENT_SERVER."
            )
        if isinstance(exc, httpx.TimeoutException):
            waited = f" within {timeout:g} s" if timeout else ""
            return ClientError(f"Server at {self.server} did not answer{waited}")
        return ServerUnreachable(
            f"Lost connection to server at {self.server}: {exc or type(exc).__name__}"
        )

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        if response.status_code == 401:
            raise Unauthorized(
                "Server returned 401 Unauthorized\n"
                f"The token from {self.token.origin} was not accepted by {self.server}. "
                "Create one with `ten token-gen` (run it where the server's tenement.toml is), "
                "then pass it with --token or TENEMENT_TOKEN."
            )
        raise ServerError(_error_message(response), response.status_code)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str | int] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request; return the successful response.

        Raises:
            ServerUnreachable: no connection (the message hints at ``ten serve``).
            Unauthorized: 401, naming where the token came from.
            ServerError: any other error status, with the server's ``error`` text.
            ClientError: the server did not answer in time.
        """
        effective = timeout if timeout is not None else DEFAULT_TIMEOUT
        try:
            response = self._http.request(
                method,
                path,
                json=json_body,
                params=params,
                timeout=httpx.Timeout(effective, connect=CONNECT_TIMEOUT),
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc, effective) from exc
        log.debug("%s %s -> %s", method, path, response.status_code)
        return self._check(response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request` and decode the JSON body.

        Raises:
            ClientError: as :meth:`request`, or the body is not JSON.
        """
        return self.decode(self.request(method, path, **kwargs))

    def decode(self, response: httpx.Response) -> Any:
        """The JSON body of a response.

        Raises:
            ClientError: the body is not JSON.
        """
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClientError(
                f"Server at {self.server} answered {response.request.method} "
                f"{response.request.url.path} with a body that is not JSON"
            ) from exc

    def sse(self, path: str, *, params: Mapping[str, str] | None = None) -> Iterator[str]:
        """Yield the ``data`` of each server-sent event until the server ends the stream.

        Comment frames (keep-alives) are skipped; multi-line data is joined with ``\\n``.

        Raises:
            ClientError: as :meth:`request`, at the start or mid-stream.
        """
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                data: list[str] = []
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield "\n".join(data)
                            data = []
                    elif line.startswith("data:"):
                        value = line[5:]
                        data.append(value[1:] if value.startswith(" ") else value)
                if data:
                    yield "\n".join(data)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, None) from exc


def open_client(cli: CliContext, *, environ: Mapping[str, str] | None = None) -> ApiClient:
    """:meth:`ApiClient.from_context` with the process environment and working directory."""
    import os

    return ApiClient.from_context(
        cli, environ=os.environ if environ is None else environ, cwd=Path.cwd()
    )
