"""The HTTP client every server-talking command uses: token, server URL, errors.

Token resolution follows the reference (``client.rs::ApiClient::from_args``):
``--token``, then ``TENEMENT_TOKEN``, then ``{data_dir}/api_token``, where data_dir comes
from ``--data-dir``/``TENEMENT_DATA_DIR`` or else from tenement.toml. Every failure is a
:class:`ClientError` whose message says what went wrong and what to do; the root group
prints it as ``Error: ...`` and exits 1.

The transport is the standard library's :mod:`http.client`, one connection per request
(the server is usually on this machine): every command starts ~90 ms sooner than with
httpx, whose import alone cost that. A plain-http request with no proxy, the usual one,
is sent and its answer read by :mod:`tenement.cli.exchange`, which leaves to http.client
(imported then) whatever :mod:`tenement.wire` does not take whole. Proxies named by
``http_proxy``/``https_proxy``/``no_proxy`` are honoured, as httpx and the reference do.
Commands import this module inside their callbacks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenement._version import __version__
from tenement.cli.bounds import MAX_ANSWER, MAX_EVENT_LINE, AnswerTooLarge, BoundedSocket, shown
from tenement.cli.context import CliContext
from tenement.errors import TenementError

if TYPE_CHECKING:  # at run time imported by the paths that use them
    import http.client
    import socket
    import ssl

TOKEN_FILE = "api_token"
#: how long an ordinary request may take in all, from connecting to the end of the
#: answer (spawn and restart wait for the instance)
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


def _answer_broken() -> tuple[type[Exception], ...]:
    """What getting an answer raises when the connection or the answer breaks off (a
    reset, a deadline, a malformed or oversized answer): the server is lost, not a bug.

    A function, not a tuple: :mod:`http.client` is imported by the paths that use it, and
    an ``except`` clause evaluates this only once something was raised.
    """
    import http.client

    return (OSError, http.client.HTTPException, ValueError, OverflowError, AnswerTooLarge)


@dataclasses.dataclass(frozen=True)
class Token:
    """An API token and where it came from (named in error messages)."""

    value: str = dataclasses.field(repr=False)
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


@dataclasses.dataclass(frozen=True)
class Response:
    """A server's whole answer to one request."""

    method: str
    path: str
    status_code: int
    reason_phrase: str
    content: bytes = dataclasses.field(repr=False)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            json.JSONDecodeError, UnicodeDecodeError: it is not.
        """
        return json.loads(self.content)


def _error_message(response: Response) -> str:
    """The server's ``{"error": ...}`` text, else ``Server returned <status> <reason>``,
    with what a terminal would obey (ESC, CR, ...) escaped."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        body = None  # RecursionError: JSON nested deeper than Python's stack
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return shown(error)
    return shown(f"Server returned {response.status_code} {response.reason_phrase}".rstrip())


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where requests go: the server's address, and the proxy to reach it through, if any."""

    tls: bool
    host: str
    port: int
    #: the server URL's own path ("" or "/prefix"), put before every request path
    prefix: str
    #: the proxy from http_proxy/https_proxy, unless no_proxy names the host
    proxy: HttpProxy | None

    @classmethod
    def parse(cls, server: str, proxies: Mapping[str, str]) -> Endpoint:
        """The endpoint of a ``--server`` URL.

        Raises:
            ClientError: the URL is not http(s)://host[:port][/prefix].
        """
        url = urllib.parse.urlsplit(server)
        try:
            port = url.port
        except ValueError:
            port = -1
        if url.scheme not in ("http", "https") or not url.hostname or port == -1:
            raise ClientError(
                f"The server URL '{server}' is not http://host[:port] or https://host[:port]; "
                "set it with --server or TENEMENT_SERVER (e.g. http://127.0.0.1:8080)"
            )
        tls = url.scheme == "https"
        default_port = 443 if tls else 80
        proxy = None
        proxy_url = proxies.get(url.scheme)
        if proxy_url:
            # urllib's own no_proxy rules (undocumented, so absent from typeshed)
            from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

            if not proxy_bypass_environment(url.netloc, proxies):
                proxy = HttpProxy.parse(proxy_url)
        return cls(tls, url.hostname, port or default_port, url.path.rstrip("/"), proxy)


@dataclasses.dataclass(frozen=True)
class HttpProxy:
    """A plain-http proxy: plain-http requests go through it, https ones are tunnelled."""

    host: str
    port: int
    #: the ``Proxy-Authorization`` value, when the proxy URL has credentials
    authorization: str | None

    @classmethod
    def parse(cls, proxy_url: str) -> HttpProxy:
        """Raises: ClientError: not an http:// proxy URL."""
        if "://" not in proxy_url:
            proxy_url = f"http://{proxy_url}"
        url = urllib.parse.urlsplit(proxy_url)
        if url.scheme != "http" or not url.hostname:
            raise ClientError(
                f"Unsupported proxy '{proxy_url}': only http:// proxies are supported"
            )
        authorization = None
        if url.username is not None:
            import base64

            user, password = (
                urllib.parse.unquote(url.username),
                urllib.parse.unquote(url.password or ""),
            )
            credentials = f"{user}:{password}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        return cls(url.hostname, url.port or 80, authorization)


def proxies_from_environment() -> dict[str, str]:
    """``http_proxy``/``https_proxy``/``no_proxy`` as urllib reads them (keys ``http``,
    ``https``, ``no``); urllib.request, ~10 ms to import, only when such a variable is set."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return {}
    from urllib.request import getproxies_environment

    return getproxies_environment()


def _tls_context() -> ssl.SSLContext:
    """The system's CA store (honours SSL_CERT_FILE/SSL_CERT_DIR); loaded for https only."""
    import ssl

    return ssl.create_default_context()


class ApiClient:
    """Talks to one ``ten serve`` with one token. Use as a context manager.

    Every method raises :class:`ClientError` (or a subclass) with a message for the user;
    transport exceptions never escape.
    """

    def __init__(self, server: str, token: Token, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.endpoint = Endpoint.parse(self.server, proxies_from_environment())
        self._headers = {
            "Authorization": f"Bearer {token.value}",
            "Accept": "*/*",
            "User-Agent": f"ten/{__version__}",
        }

    @classmethod
    def from_context(cls, cli: CliContext, *, environ: Mapping[str, str], cwd: Path) -> ApiClient:
        """A client for the server and token the global options and environment name."""
        return cls(cli.server, resolve_token(cli, environ=environ, cwd=cwd))

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between requests; kept for the context-manager protocol."""

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        """A connection to the server (through the proxy, if any), its TLS handshake done.

        Raises:
            ServerUnreachable: refused, unknown host, TLS failure, or no answer in
                :data:`CONNECT_TIMEOUT` seconds (or ``timeout``, if shorter).
        """
        wait = min(CONNECT_TIMEOUT, timeout)
        import http.client

        point = self.endpoint
        host, port = (
            (point.proxy.host, point.proxy.port) if point.proxy else (point.host, point.port)
        )
        connection: http.client.HTTPConnection
        if point.tls:
            connection = http.client.HTTPSConnection(
                host, port, timeout=wait, context=_tls_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=wait)
        if point.proxy and point.tls:
            auth = point.proxy.authorization
            headers = {"Proxy-Authorization": auth} if auth else None
            connection.set_tunnel(point.host, point.port, headers=headers)
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            via = f" through the proxy {host}:{port}" if point.proxy else ""
            raise self._unreachable(exc, via) from exc
        return connection

    def _unreachable(self, exc: BaseException, via: str) -> ServerUnreachable:
        return ServerUnreachable(
            f"Failed to connect to server at {self.server}{via}\n"
            f"  cause: {exc or type(exc).__name__}\n"
            "Is `ten serve` running? Choose the server with --server or TENEMENT_SERVER."
        )

    def _connect_plain(self, timeout: float) -> socket.socket:
        """What :meth:`_connect` does for a plain-http server and no proxy (as
        ``http.client.HTTPConnection.connect``), without http.client.

        Raises:
            ServerUnreachable: as :meth:`_connect`.
        """
        import socket

        point = self.endpoint
        try:
            sock = socket.create_connection((point.host, point.port), min(CONNECT_TIMEOUT, timeout))
        except OSError as exc:
            raise self._unreachable(exc, "") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            raise self._unreachable(exc, "") from exc
        return sock

    def _lost(self, exc: BaseException, timeout: float | None) -> ClientError:
        if isinstance(exc, AnswerTooLarge):
            return ClientError(
                f"Server at {self.server} sent an answer larger than {MAX_ANSWER >> 20} MiB"
            )
        # http.client's messages quote the server's bytes (a status line, a chunk size)
        cause = shown(str(exc) or type(exc).__name__)
        if isinstance(exc, (ValueError, OverflowError)):
            # what http.client raises for a chunk size it cannot read (-5, 2**80)
            return ClientError(f"Server at {self.server} sent a malformed answer: {cause}")
        if isinstance(exc, TimeoutError):
            waited = f" within {timeout:g} s" if timeout else ""
            return ClientError(f"Server at {self.server} did not answer{waited}")
        return ServerUnreachable(f"Lost connection to server at {self.server}: {cause}")

    def _target(self, path: str, params: Mapping[str, str | int] | None) -> str:
        target = self.endpoint.prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(params)
        point = self.endpoint
        if point.proxy and not point.tls:  # a plain-http proxy takes the absolute URL
            target = f"http://{point.host}:{point.port}{target}"
        return target

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str | int] | None,
        timeout: float,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, BoundedSocket]:
        """Connect, send one request, and read the response's head, all within
        ``timeout``; the socket it returns bounds the rest of the answer by the same
        deadline (:func:`tenement.cli.fallback.read_body`)."""
        deadline = time.monotonic() + timeout
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        proxy = self.endpoint.proxy
        if proxy and proxy.authorization and not self.endpoint.tls:
            headers["Proxy-Authorization"] = proxy.authorization
        import http.client

        from tenement.cli import fallback

        connection = self._connect(timeout)
        try:
            assert connection.sock is not None
            bounded = BoundedSocket(connection.sock, deadline=deadline, limit=MAX_ANSWER)
            bounded.wait()
            connection.request(method, self._target(path, params), body=body, headers=headers)
            return connection, fallback.begin(b"", bounded, method), bounded
        except (OSError, http.client.HTTPException, ValueError, AnswerTooLarge) as exc:
            connection.close()
            raise self._lost(exc, timeout) from exc

    def _check(self, response: Response) -> Response:
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
    ) -> Response:
        """Send one request; return the successful response.

        ``timeout`` (the default: the client's) bounds the whole exchange, from connecting
        to the end of the answer; the connection itself must be made within
        :data:`CONNECT_TIMEOUT`. An answer over :data:`~tenement.cli.bounds.MAX_ANSWER`
        bytes is refused.

        Raises:
            ServerUnreachable: no connection (the message hints at ``ten serve``).
            Unauthorized: 401, naming where the token came from.
            ServerError: any other error status, with the server's ``error`` text.
            ClientError: the server did not answer in time, or sent a malformed or too
                large answer.
        """
        effective = timeout if timeout is not None else self.timeout
        body = None if json_body is None else json.dumps(json_body).encode()
        plain = self._plain_exchange(method, path, body=body, params=params, timeout=effective)
        if plain is not None:
            return self._check(plain)

        from tenement.cli import fallback

        connection, answer, _ = self._send(
            method, path, body=body, params=params, timeout=effective
        )
        try:
            content = fallback.read_body(answer)
        except _answer_broken() as exc:
            raise self._lost(exc, effective) from exc
        finally:
            answer.close()
            connection.close()
        return self._check(Response(method, path, answer.status, answer.reason, content))

    def _plain_exchange(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str | int] | None,
        timeout: float,
    ) -> Response | None:
        """The exchange of :meth:`request` through :mod:`tenement.cli.exchange`; None when
        that is not for this request (https, a proxy, a header it would not write)."""
        from tenement.cli import exchange

        point = self.endpoint
        if point.tls or point.proxy is not None:
            return None
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        wire_request = exchange.request_bytes(
            method, self._target(path, params), point.host, point.port, headers, body
        )
        if wire_request is None:
            return None
        deadline = time.monotonic() + timeout
        sock = self._connect_plain(timeout)
        try:
            bounded = BoundedSocket(sock, deadline=deadline, limit=MAX_ANSWER)
            bounded.wait()
            sock.sendall(wire_request)
            answer = exchange.read_answer(bounded, method)
        except _answer_broken() as exc:
            raise self._lost(exc, timeout) from exc
        finally:
            sock.close()
        return Response(method, path, answer.status, answer.reason, answer.content)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request` and decode the JSON body.

        Raises:
            ClientError: as :meth:`request`, or the body is not JSON.
        """
        return self.decode(self.request(method, path, **kwargs))

    def decode(self, response: Response) -> Any:
        """The JSON body of a response.

        Raises:
            ClientError: the body is not JSON.
        """
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClientError(
                f"Server at {self.server} answered {response.method} {response.path} "
                "with a body that is not JSON"
            ) from exc
        except RecursionError:
            raise ClientError(
                f"Server at {self.server} answered {response.method} {response.path} "
                "with JSON nested too deeply to read"
            ) from None

    def sse(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Iterator[str]:
        """Yield the ``data`` of each server-sent event until the server ends the stream.

        Comment frames (keep-alives) are skipped; multi-line data is joined with ``\\n``.
        The client's timeout bounds getting the answer's head (and an error's body); the
        stream itself lasts as long as the caller reads it. An event over
        :data:`~tenement.cli.bounds.MAX_EVENT_LINE` bytes ends it.

        Raises:
            ClientError: as :meth:`request`, at the start or mid-stream.
        """

        from tenement.cli import fallback

        connection, answer, bounded = self._send(
            "GET", path, body=None, params=params, timeout=self.timeout
        )
        phase_timeout: float | None = self.timeout
        try:
            if not 200 <= answer.status < 300:
                content = fallback.read_body(answer)
                self._check(Response("GET", path, answer.status, answer.reason, content))
            bounded.unbounded()
            phase_timeout = None
            data: list[str] = []
            size = 0
            while raw := answer.readline(MAX_EVENT_LINE + 1):
                size += len(raw)
                if size > MAX_EVENT_LINE:
                    raise ClientError(
                        f"Server at {self.server} sent an event larger than "
                        f"{MAX_EVENT_LINE >> 20} MiB"
                    )
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    if data:
                        yield "\n".join(data)
                        data = []
                    size = 0
                elif line.startswith("data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(" ") else value)
            if data:
                yield "\n".join(data)
        except _answer_broken() as exc:
            raise self._lost(exc, phase_timeout) from exc
        finally:
            answer.close()
            connection.close()


def open_client(cli: CliContext, *, environ: Mapping[str, str] | None = None) -> ApiClient:
    """:meth:`ApiClient.from_context` with the process environment and working directory."""
    return ApiClient.from_context(
        cli, environ=os.environ if environ is None else environ, cwd=Path.cwd()
    )
