from datetime import UTC, datetime

import pytest

from tenement.store._time import ms_from_rfc3339, parse_rfc3339, rfc3339_from_ms


def test_milliseconds_round_trip() -> None:
    for ms in (0, 1, 999, 1_700_000_000_123, 1_795_714_881_569):
        assert ms_from_rfc3339(rfc3339_from_ms(ms)) == ms


def test_format_is_the_references_with_milliseconds() -> None:
    assert rfc3339_from_ms(1_700_000_000_123) == "2023-11-14T22:13:20.123+00:00"


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T17:41:21.569313209+00:00",  # what the reference writes (nanoseconds)
        "2026-11-26T17:41:21.569Z",
        "2026-11-26T18:41:21.569+01:00",
    ],
)
def test_parses_the_references_timestamps(text: str) -> None:
    assert parse_rfc3339(text).astimezone(UTC).replace(microsecond=0) == datetime(
        2026, 11, 26, 17, 41, 21, tzinfo=UTC
    )
    assert ms_from_rfc3339(text) == 1_795_714_881_569


def test_text_order_is_time_order() -> None:
    earlier, later = rfc3339_from_ms(1_000_000_000_999), rfc3339_from_ms(1_000_000_001_000)
    assert earlier < later
