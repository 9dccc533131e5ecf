"""Generated HTTP/1.1 requests (hypothesis strategies), valid and near-valid: mixes of
Content-Length and Transfer-Encoding, duplicate headers, odd whitespace, obs-fold, bare
LF and CR, odd chunk sizes, methods, targets and versions, NULs, long heads. Mostly
plain, with an odd part about once in a dozen draws, so that most messages get past a
parser's first line. Hosts are ``a.test`` (the tests put their own in)."""

from __future__ import annotations

from hypothesis import strategies as st

METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"]
ODD_METHODS = [b"get", b"G\x00T", b"GE T", b"", b"PRI", b"M-SEARCH", b"\xffGET", b"GET\t"]
TARGETS = [b"/", b"/a?b=c", b"/a/../b", b"/%00"]
ODD_TARGETS = [
    b"*", b"http://a.test/x", b"a.test:443", b"/a b", b"/\x00", b"/\x7f", b"", b"/\xff", b"//",
    b"/" + b"a" * 9000,
]  # fmt: skip
ODD_VERSIONS = [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1.10"]
NAMES = [b"Connection", b"X-A", b"Expect", b"Upgrade", b"Trailer", b"Keep-Alive", b"Accept"]
ODD_NAMES = [
    b"Host", b"host", b"Content-Length", b"CONTENT-LENGTH", b"Transfer-Encoding", b"Host ",
    b" Host", b"Content-Length\x00", b"X-\xff", b"", b"X A", b"Content-Length ",
]  # fmt: skip
VALUES = {
    b"host": [b"a.test", b"a.test:80", b"", b"a.test, b.test", b"a\x00b"],
    b"content-length": [b"0", b"5", b"00005", b"+5", b"-1", b"5,5", b"5, 5", b" 5 ", b"0x5",
                        b"99999999999999999999", b"5 5", b"", b"\t5"],
    b"transfer-encoding": [b"chunked", b"Chunked", b"chunked, identity", b"identity, chunked",
                           b"xchunked", b"chunked ", b"gzip, chunked", b"chunked\x00", b""],
    b"connection": [b"close", b"keep-alive", b"Upgrade", b"host", b"close, host", b""],
    b"expect": [b"100-continue", b"nothing"],
    b"upgrade": [b"websocket", b"h2c"],
}  # fmt: skip
PLAIN_VALUES = [b"v", b"", b"text/html, */*", b"a b", b"x" * 3000]
ODD_VALUES = [b" v ", b"a\tb", b"a\x00b", b"\x80\xff", b"a\x7fb", b"a\x01b", b"a\rb", b"a\nb"]
SEPARATORS = [b": "] * 30 + [b":", b" : ", b":\t", b":  "]
CHUNK_SIZES = [
    b"0",
    b"5",
    b"05",
    b"5;ext=1",
    b"5 ",
    b"0x5",
    b"-5",
    b"FFFFFFFFFFFFFFFFFFFF",
    b"",
    b"G",
]
#: line ends: mostly CRLF
ENDS = [b"\r\n"] * 40 + [b"\n", b"\r"]


def mostly(plain: list[bytes], odd: list[bytes], odds: int = 12) -> st.SearchStrategy[bytes]:
    """One of ``plain``, or of ``odd`` about once in ``odds`` draws."""
    return st.integers(0, odds - 1).flatmap(lambda n: st.sampled_from(odd if n == 0 else plain))


@st.composite
def header_lines(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(mostly(NAMES, ODD_NAMES, 6))
        key = name.strip().lower()
        if key in VALUES:
            value = draw(st.sampled_from(VALUES[key]))
        else:
            value = draw(mostly(PLAIN_VALUES, ODD_VALUES, 8) | st.binary(max_size=6))
        lines.append(name + draw(st.sampled_from(SEPARATORS)) + value)
        if draw(st.integers(0, 30)) == 0:
            lines.append(draw(st.sampled_from([b" folded", b"\tfolded", b" "])))
    return lines


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Framing header lines and the body bytes (which may not match them)."""
    kind = draw(st.sampled_from(["none", "length", "length", "chunked", "chunked", "both"]))
    payload = draw(st.binary(max_size=20))
    if kind == "none":
        return [], b""
    right = len(payload)
    length = draw(mostly([right], [0, right + 3, max(0, right - 2)], 6))
    chunked = b""
    for _ in range(draw(st.integers(0, 2))):
        size = draw(mostly([b"%x" % right, b"%X" % right], CHUNK_SIZES, 6))
        chunked += size + b"\r\n" + payload + b"\r\n"
    end = [b"0\r\n\r\n"]
    chunked += draw(mostly(end, [b"0\r\nX-T: 1\r\n\r\n", b"0\n\n", b"", b"0\r\n"], 6))
    if kind == "length":
        return [b"Content-Length: %d" % length], payload
    if kind == "chunked":
        return [b"Transfer-Encoding: chunked"], chunked
    return [b"Content-Length: %d" % length, b"Transfer-Encoding: chunked"], chunked


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(mostly(METHODS, ODD_METHODS))
    target = draw(mostly(TARGETS, ODD_TARGETS))
    version = draw(mostly([b"HTTP/1.1"], ODD_VERSIONS))
    lines = [method + b" " + target + b" " + version]
    if draw(st.integers(0, 9)):
        lines.append(b"Host: a.test")
    framing, body = draw(bodies())
    extra = draw(header_lines())
    fields = draw(st.permutations([*framing, *extra]))
    lines += fields
    if draw(st.integers(0, 20)) == 0:
        lines += [b"X-Many-%d: v" % i for i in range(draw(st.integers(100, 1200)))]
    ends = [draw(st.sampled_from(ENDS)) for _ in lines]
    head = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    head += draw(st.sampled_from(ENDS))
    after = draw(st.sampled_from([b"", b"", b"GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n", b"G"]))
    return head + body + after
