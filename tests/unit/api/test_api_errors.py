"""The error -> status table holds real error classes and picks the reference's codes."""

from __future__ import annotations

import pytest

import tenement.ids
import tenement.supervisor
from tenement.api.errors import STATUS_BY_ERROR, ApiError, status_for
from tenement.errors import TenementError

TABLE_IDS = [cls.__name__ for cls, _ in STATUS_BY_ERROR]


@pytest.mark.parametrize(("cls", "status"), STATUS_BY_ERROR, ids=TABLE_IDS)
def test_every_class_in_the_table_is_a_real_error_class(cls: object, status: int) -> None:
    assert isinstance(cls, type)
    assert issubclass(cls, TenementError)
    assert 400 <= status <= 599


@pytest.mark.parametrize(("cls", "status"), STATUS_BY_ERROR, ids=TABLE_IDS)
def test_a_subclass_maps_like_its_parent(cls: type[TenementError], status: int) -> None:
    subclass = type(f"Special{cls.__name__}", (cls,), {})
    # BaseException.__new__ makes an instance without the parent's __init__ arguments
    assert status_for(subclass.__new__(subclass)) == status


def test_the_table_puts_the_most_specific_class_first() -> None:
    """A class after one of its bases could never match: the base would answer first."""
    for index, (cls, _) in enumerate(STATUS_BY_ERROR):
        for earlier, _ in STATUS_BY_ERROR[:index]:
            assert not issubclass(cls, earlier), f"{cls.__name__} comes after {earlier.__name__}"


def test_a_class_that_only_shares_a_name_is_not_mapped() -> None:
    """The status follows the class, not its name: an unrelated error called
    InstanceNotFound (say, another layer's) is a plain 500, not the supervisor's 404."""
    namesake = type("InstanceNotFound", (TenementError,), {})
    assert status_for(namesake("gone")) == 500


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (tenement.ids.InvalidInstanceId("x"), 400),
        (tenement.supervisor.InstanceNotFound("a:b"), 404),
        (tenement.supervisor.UnknownService("nope"), 404),
        (tenement.supervisor.DeployError("a:b", "failed"), 500),
        (tenement.supervisor.SpawnError("no such command"), 500),
        (tenement.supervisor.InstanceFailed("a:b"), 500),
        (ApiError(403, "no"), 403),
        (TenementError("anything else"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_status_for(error: TenementError, status: int) -> None:
    assert status_for(error) == status
