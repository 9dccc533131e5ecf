"""`ten move --keep-source`: the times it takes, and the error for one it does not."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from tenement.cli import ten
from tenement.cli.move import keep_time, summary


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("3600", 3600), ("90s", 90), ("90m", 5400), ("12h", 43200), ("7d", 604800)],
)
def test_a_time_is_seconds_or_a_number_with_its_unit(text: str, seconds: int) -> None:
    assert keep_time(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-1", "1.5h", "7 d", "1w", "٣", "9" * 13 + "s"])
def test_anything_else_is_refused_saying_what_to_write(text: str) -> None:
    with pytest.raises(click.BadParameter, match=r"write seconds \(3600\)"):
        keep_time(text)


def test_the_cli_refuses_a_bad_time_before_it_calls_the_server() -> None:
    result = CliRunner().invoke(
        ten,
        [
            "move",
            "echo:alice",
            "--to",
            "b",
            "--keep-source",
            "soon",
            "--server",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2
    assert "--keep-source" in result.output and "'soon' is not a time" in result.output


def test_the_summary_says_until_when_the_copy_is_kept() -> None:
    report = {"from": "a", "to": "b", "kept": "/d/echo/moved-alice-x", "kept_until": 1796644800}
    text = summary(report, "echo:alice", "b")
    assert "keeps its copy of the data in /d/echo/moved-alice-x until 2026-12-07 12:00 UTC" in text


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--abort", "--to", "b"], "--to does not go with --abort"),
        (["--abort", "--keep-source", "1h"], "--keep-source does not go with --abort"),
        ([], "Missing option '--to': the fleet node to move echo:alice to"),
    ],
)
def test_abort_takes_no_destination_and_a_move_needs_one(args: list[str], said: str) -> None:
    # a server that is not there: the usage is refused before any call
    result = CliRunner().invoke(
        ten, ["move", "echo:alice", *args, "--server", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2, result.output
    assert said in result.output
