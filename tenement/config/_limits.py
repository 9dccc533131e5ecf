"""Bounds on what reaches the TOML parser, so that a broken file is an error, not a crash.

tomllib descends once per nested array or inline table, and keeps state for every prefix
of a dotted key. Measured here: ``a = [[[...`` a few thousand levels deep ran out of
Python's stack (RecursionError); one dotted key of 10,000 parts (``a.a.a...= 1``) took
2 s and 400 MB, and of 100,000 parts the whole memory of the machine. tenement.toml's
deepest key has four parts (``service.NAME.env.KEY``), so a key of more parts than
:data:`MAX_KEY_PARTS` is refused before tomllib sees it.
"""

from __future__ import annotations

import re

#: dotted-key parts allowed in one key; tenement's own keys use four at most
MAX_KEY_PARTS = 64

#: characters that may stand between the dots of one dotted key (bare parts, blanks)
_KEY_RUN = re.compile(r"[A-Za-z0-9_\- \t]+")


def deepest_dotted_key(text: str) -> tuple[int, int]:
    """The most parts of any dotted key in ``text`` (an over-estimate, never an under-),
    and the offset where that key reached them.

    One linear pass. Dots outside strings are counted while only key characters, blanks
    and quoted parts stand between them; anything else (``=``, ``,``, brackets, a
    newline) ends the run. Strings are skipped whole, an unterminated one to its line's
    end, so that no input makes the scan slower than linear.
    """
    deepest = run = where = 0
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char == ".":
            run += 1
            if run > deepest:
                deepest, where = run, index
            index += 1
        elif char in "\"'":
            index = _after_string(text, index, char)
        else:
            key = _KEY_RUN.match(text, index)
            if key is not None:
                index = key.end()
            else:
                run = 0
                index += 1
    return deepest + 1, where


def _after_string(text: str, start: int, quote: str) -> int:
    """The index just past the string that opens at ``start``."""
    if text.startswith(quote * 3, start):
        end = text.find(quote * 3, start + 3)
        return len(text) if end < 0 else end + 3
    index = start + 1
    size = len(text)
    while index < size:
        char = text[index]
        if char == quote or char == "\n":
            return index + 1
        index += 2 if quote == '"' and char == "\\" else 1
    return size
