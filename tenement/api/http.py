"""The few HTTP pieces the API needs on top of raw ASGI: responses and JSON bodies.

The API is plain ASGI (no framework): a dozen routes do not earn a dependency and its
import time, and the status codes for bad bodies are ours to choose:

* 415 when the body is not declared ``application/json`` (as the reference),
* 400 when it is not valid JSON, or not a JSON object,
* 422 when a field is missing or has the wrong type (as the reference),
* 413 when it is larger than :data:`MAX_BODY_BYTES`.

Each comes with ``{"error": "..."}`` naming the problem.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import trio

from tenement.api.errors import ApiError
from tenement.types import Receive, Scope, Send

#: the largest request body the API reads (the reference's axum default is 2 MB)
MAX_BODY_BYTES = 1024 * 1024
#: the largest integer a body field or a query count takes (the reference's 64-bit
#: unsigned fields; beyond it a timeout no longer fits a float)
MAX_INT = 2**64 - 1
#: the longest a moved tenant's old copy may be kept (``keep_source``): 10 years, in seconds
MAX_KEEP_SOURCE = 10 * 365 * 24 * 3600

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


@attrs.frozen
class Response:
    """A complete response: status, body and headers (content-length is added)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()

    async def __call__(self, send: Send) -> None:
        # a 304's length would have to be the full answer's (RFC 9110 8.6): it has none
        headers = [] if self.status == 304 else [(b"content-length", str(len(self.body)).encode())]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type.encode()))
        headers.extend(self.headers)
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


#: bodies from this size on are sent gzip-compressed to a client that accepts it
COMPRESS_FROM_BYTES = 8192
#: larger bodies are compressed in a worker thread (level 1 does ~100 MB/s here)
COMPRESS_INLINE_BYTES = 256 * 1024


def accepts_gzip(scope: Scope) -> bool:
    """Whether the request's ``Accept-Encoding`` allows gzip (RFC 9110 12.5.3: ``gzip``
    named, else ``*``, with a quality above 0)."""
    qualities: dict[str, float] = {}
    for item in (header(scope, b"accept-encoding") or "").lower().split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        key, _, value = params.replace(" ", "").partition("=")
        if key == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        qualities.setdefault(name.strip(), quality)
    quality = qualities.get("gzip", qualities.get("*", 0.0))
    return quality > 0


async def compressed(response: Response, scope: Scope) -> Response:
    """``response`` gzip-compressed when it is large, uncompressed and the client takes it.

    The dashboard's instance list for 1,000 instances is ~300 KB of JSON and ~25 KB
    compressed; level 1 compresses it in a few milliseconds. A body larger than
    :data:`COMPRESS_INLINE_BYTES` is compressed in a worker thread, so that no answer
    holds up the others. The ``ten`` CLI sends no ``Accept-Encoding``, so it always gets
    the plain body. Every answer that could be compressed says ``Vary: accept-encoding``
    (a cache must not hand the one to a client that asked for the other).
    """
    if len(response.body) < COMPRESS_FROM_BYTES or any(
        name == b"content-encoding" for name, _ in response.headers
    ):
        return response
    vary = (b"vary", b"accept-encoding")
    if not accepts_gzip(scope):
        return attrs.evolve(response, headers=(*response.headers, vary))
    body = response.body
    if len(body) <= COMPRESS_INLINE_BYTES:
        packed = gzip.compress(body, compresslevel=1, mtime=0)
    else:
        packed = await trio.to_thread.run_sync(
            lambda: gzip.compress(body, compresslevel=1, mtime=0)
        )
    return attrs.evolve(
        response, body=packed, headers=(*response.headers, (b"content-encoding", b"gzip"), vary)
    )


def json_response(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(status, body, JSON)


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def empty(status: int, headers: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    return Response(status, headers=headers)


def text(status: int, body: str) -> Response:
    return Response(status, body.encode(), TEXT)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes), decoded as latin-1."""
    headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def query(scope: Scope) -> dict[str, str]:
    """The query string as a dict; a repeated key keeps its last value."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return dict(parse_qsl(raw, keep_blank_values=True))


async def read_body(receive: Receive) -> bytes:
    """The whole request body.

    Raises:
        ApiError: 413 when it exceeds :data:`MAX_BODY_BYTES`.
    """
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def read_json_object(scope: Scope, receive: Receive) -> dict[str, Any]:
    """The request body as a JSON object, with the status codes in the module docstring."""
    content_type = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type != JSON and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise ApiError(415, "Expected request with `Content-Type: application/json`")
    body = await read_body(receive)
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Failed to parse the request body as JSON: {exc}") from None
    except RecursionError:
        # The decoder recurses once per nesting level; the API's bodies are flat objects.
        raise ApiError(
            400,
            "Failed to parse the request body as JSON: arrays or objects are nested too "
            "deeply; send a flat JSON object",
        ) from None
    if not isinstance(value, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return value


def field(body: Mapping[str, Any], name: str, kind: type, default: Any = attrs.NOTHING) -> Any:
    """``body[name]`` checked to be a ``kind`` (bool is never an int here).

    Raises:
        ApiError: 422 naming the field when it is missing or of the wrong type.
    """
    if name not in body or (body[name] is None and default is not attrs.NOTHING):
        if default is attrs.NOTHING:
            raise ApiError(422, f"missing field `{name}`")
        return default
    value = body[name]
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        expected = {str: "a string", int: "an integer", float: "a number"}.get(kind, kind.__name__)
        raise ApiError(422, f"field `{name}` must be {expected}, got {json.dumps(value)}")
    return value


def non_negative_int(
    body: Mapping[str, Any], name: str, default: Any = attrs.NOTHING, *, maximum: int = MAX_INT
) -> int:
    """``body[name]`` as an integer from 0 to ``maximum`` (:data:`MAX_INT` unless given).

    Raises:
        ApiError: 422 naming the field and the range (as :func:`field`).
    """
    value = field(body, name, int, default)
    if not 0 <= value <= maximum:
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        raise ApiError(422, f"field `{name}` must be an integer from 0 to {maximum}, got {shown}")
    return int(value)
