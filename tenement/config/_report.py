"""Collecting problems and warnings, with the file and line each one is at.

Line numbers are best effort: tomllib does not keep positions, so :class:`Locator`
scans the text for table headers and keys.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from tenement.config import _schema as schema
from tenement.config._model import ConfigError, ConfigWarning, locate

DEPRECATED_SINCE = "0.3"


# -- where things are in the text -------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?([^\[\]]+)\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")
_PART = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^.\s]+)\s*""")


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(text))


class Locator:
    """Best-effort line numbers for tables and keys, by scanning the text."""

    def __init__(self, text: str) -> None:
        self.headers: dict[tuple[str, ...], int] = {}
        self.keys: dict[tuple[tuple[str, ...], str], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _dotted(header.group(1))
                for end in range(1, len(table) + 1):  # [a.b] also declares [a]
                    self.headers.setdefault(table[:end], number)
                continue
            key = _KEY.match(line)
            if key:
                self.keys.setdefault((table, key.group(1).strip("\"'")), number)

    def line(self, table: tuple[str, ...], key: str | None) -> int | None:
        if key is not None and (table, key) in self.keys:
            return self.keys[(table, key)]
        if key is not None and (*table, key) in self.headers:  # a sub-table
            return self.headers[(*table, key)]
        if table and (table[:-1], table[-1]) in self.keys:  # an inline table
            return self.keys[(table[:-1], table[-1])]
        if table in self.headers:
            return self.headers[table]
        return self.line(table[:-1], None) if table else None


@attrs.define
class Report:
    """Collects problems and warnings for one document."""

    source: Path | None
    locator: Locator
    problems: list[tuple[str, int | None, str, str | None]] = attrs.Factory(list)
    warnings: list[ConfigWarning] = attrs.Factory(list)

    def error(self, table: tuple[str, ...], key: str | None, message: str) -> None:
        line = self.locator.line(table, key)
        self.problems.append((message, line, ".".join(table), key))

    def warn(self, table: tuple[str, ...], key: str | None, message: str, category: str) -> None:
        self.warnings.append(
            ConfigWarning(
                message,
                category,
                path=self.source,
                line=self.locator.line(table, key),
                table=".".join(table),
                key=key,
            )
        )

    def unknown(
        self, table: tuple[str, ...], key: str, value: Any, known: Iterable[str], home: str
    ) -> None:
        what = "table" if isinstance(value, dict) else "key"
        message = f"unknown {what}, ignored"
        elsewhere = [name for name, keys in schema.HOMES.items() if key in keys and name != home]
        close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
        if elsewhere:
            message += f" ('{key}' belongs in {elsewhere[0]})"
        elif close:
            message += f" (did you mean '{close[0]}'?)"
        if what == "table":
            self.warn((*table, key), None, message, "unknown")
        else:
            self.warn(table, key, message, "unknown")

    def deprecated(self, table: tuple[str, ...], key: str | None, old: str, new: str) -> None:
        self.warn(
            table,
            key,
            f"`{old}` is deprecated since {DEPRECATED_SINCE}; use `{new}` instead",
            "deprecated",
        )

    def raise_if_failed(self) -> None:
        """Raise one :class:`ConfigError` listing every problem, if there was any.

        The warnings are appended to its message: a typo that warns (``comand``) is often
        the cause of the error (no ``command``).
        """
        if not self.problems:
            return
        lines = tuple(
            f"{locate(self.source, line, table, key)}: {message}"
            for message, line, table, key in self.problems
        )
        _, line, table, key = self.problems[0]
        message = "\n".join([*lines, *(f"warning: {w}" for w in self.warnings)])
        raise ConfigError(
            message, path=self.source, line=line, table=table, key=key, problems=lines
        )


def check_fields(
    report: Report,
    table: tuple[str, ...],
    data: Mapping[str, Any],
    checkers: Mapping[str, Callable[[Any], Any]],
    *,
    home: str,
    handled: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check every key of one table with its checker; unknown keys warn.

    Args:
        home: how the docs name this kind of table (``[service.NAME]``), so that a key
            that belongs in another kind of table can say where it goes.
        handled: keys the caller checks itself.

    Returns:
        The checked values of the keys that passed (failures are reported).
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in handled:
            continue
        check = checkers.get(key)
        if check is None:
            report.unknown(table, key, value, [*checkers, *handled], home)
            continue
        try:
            values[key] = check(value)
        except schema.Invalid as exc:
            if exc.subkey is None:
                report.error(table, key, str(exc))
            else:
                report.error((*table, key), exc.subkey, str(exc))
    return values


def ensure_table(
    report: Report, table: tuple[str, ...], value: Any, example: str
) -> dict[str, Any]:
    """``value`` if it is a table; else report what was expected and return ``{}``."""
    if isinstance(value, dict):
        return value
    report.error(
        table[:-1], table[-1], f"expected a table ({example}), got {schema.describe(value)}"
    )
    return {}
