"""Text from elsewhere (a peer's row in the shared database, a config value) made safe to
print to a log or a terminal: control characters escaped as Python writes them."""

from __future__ import annotations


def shown(text: str) -> str:
    """``text`` with every non-printable character escaped (``"\\x1b"``, ``"\\n"``): an
    escape sequence in it cannot drive a terminal, a newline cannot forge a log line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
