"""The output formats of client commands, byte for byte as `ten` 0.2.2 prints them."""

from __future__ import annotations

import pytest

from tenement.cli import render


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86399, "23h"),
        (86400, "1d"),
        (10 * 86400 + 5, "10d"),
        (None, "-"),
        (-1, "-"),
    ],
    ids=str,
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert render.format_duration(seconds) == text


def test_ps_table_without_instances() -> None:
    text = render.ps_table([], "http://localhost:8080")
    assert text == "No running instances\nServer: http://localhost:8080"


def test_ps_table_matches_the_reference_layout() -> None:
    # captured from the reference `ten ps` (tenement 0.2.2)
    expected = (
        "INSTANCE             LISTEN               UPTIME     IDLE       HEALTH   WEIGHT\n"
        "api:v2               127.0.0.1:30002      0s         0s         healthy  0     \n"
        "api:prod             127.0.0.1:30001      1s         1s         unknown  100   \n"
        "\n"
        "2 instance(s) running on http://localhost:18080"
    )
    instances = [
        {"id": "api:v2", "socket": "127.0.0.1:30002", "uptime_secs": 0, "idle_secs": 0,
         "health": "healthy", "weight": 0, "restarts": 0},
        {"id": "api:prod", "socket": "127.0.0.1:30001", "uptime_secs": 1, "idle_secs": 1,
         "health": "unknown", "weight": 100, "restarts": 1},
    ]  # fmt: skip
    assert render.ps_table(instances, "http://localhost:18080") == expected


def test_ps_table_long_cells_push_the_row_instead_of_being_cut() -> None:
    row = {"id": "notes:" + "a" * 30, "socket": None, "uptime_secs": 7200, "idle_secs": 90,
           "health": "unhealthy", "weight": 5}  # fmt: skip
    line = render.ps_table([row], "u").splitlines()[1]
    assert line == f"notes:{'a' * 30} -                    2h         1m         unhealthy 5     "


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            {"timestamp": 1795715094871, "level": "stdout", "process": "api",
             "instance_id": "prod", "message": "GET /health"},
            "17:44:54 [OUT] api:prod GET /health",
        ),
        (
            {"timestamp": 0, "level": "stderr", "process": "api", "instance_id": "x",
             "message": "boom"},
            "00:00:00 [ERR] api:x boom",
        ),
    ],
    ids=["stdout", "stderr-at-epoch"],
)  # fmt: skip
def test_log_line(entry: dict, line: str) -> None:
    assert render.log_line(entry) == line
    assert render.follow_line(entry) == line[9:]
