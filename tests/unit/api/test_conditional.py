"""``If-None-Match`` against a weak ETag (tenement.api.conditional)."""

from __future__ import annotations

import pytest

from tenement.api.conditional import etag, matches, not_modified

TAG = etag(1, "a")


def opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def test_a_tag_is_weak_and_stands_for_its_parts() -> None:
    assert TAG.startswith('W/"') and TAG.endswith('"')
    assert etag(1, "a") == TAG
    assert etag(2, "a") != TAG


@pytest.mark.parametrize(
    "condition",
    [
        TAG,
        opaque(TAG),  # weak comparison: a strong tag with the same opaque part matches
        "*",
        " * ",
        f'"x", {TAG}',
        f'W/"x",{opaque(TAG)} , "y"',
        f", ,{TAG},",  # empty list elements are allowed
        f'\t{TAG}\t,\t"z"',
    ],
)
def test_a_condition_naming_the_tag_matches(condition: str) -> None:
    assert matches(condition, TAG)


@pytest.mark.parametrize(
    "condition",
    [
        "",
        '"other"',
        'W/"other", "else"',
        TAG[3:-1],  # unquoted
        f"{TAG} garbage",  # not a list of tags: ignored as a whole
        f"garbage, {TAG}",
        f"{TAG[:-1]}",  # an unterminated quote
        f'{TAG}"',
        f"{TAG};{TAG}",
        "**",
        f"*, {TAG}",
        "\x00\xff" * 100,
        f"w/{opaque(TAG)}",  # W/ is case-sensitive
    ],
)
def test_anything_else_does_not_match(condition: str) -> None:
    assert not matches(condition, TAG)


def test_a_long_list_is_read_to_its_end() -> None:
    others = ", ".join(f'W/"{n:016x}"' for n in range(20_000))
    assert matches(f"{others}, {TAG}", TAG)
    assert not matches(others, TAG)
    assert not matches(f"{others}, {TAG}, oops", TAG)


def scope(*values: bytes) -> dict[str, object]:
    return {"headers": [(b"accept", b"*/*"), *((b"If-None-Match", v) for v in values)]}


def test_several_header_lines_are_one_list() -> None:
    answer = not_modified(scope(b'"x"', TAG.encode()), TAG)
    assert answer is not None
    assert (answer.status, answer.body, answer.headers) == (304, b"", ((b"etag", TAG.encode()),))
    assert not_modified(scope(b'"x"', b'"y"'), TAG) is None
    assert not_modified(scope(), TAG) is None
