"""The error -> status table names real error classes and picks the reference's codes."""

from __future__ import annotations

import pytest

import tenement.ids
import tenement.supervisor
from tenement.api.errors import STATUS_BY_ERROR, ApiError, status_for
from tenement.errors import TenementError


@pytest.mark.parametrize("name", sorted(STATUS_BY_ERROR))
def test_every_name_in_the_table_is_a_real_error_class(name: str) -> None:
    cls = getattr(tenement.supervisor, name, None) or getattr(tenement.ids, name, None)
    assert isinstance(cls, type)
    assert issubclass(cls, TenementError)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (tenement.ids.InvalidInstanceId("x"), 400),
        (tenement.supervisor.InstanceNotFound("a:b"), 404),
        (tenement.supervisor.UnknownService("nope"), 404),
        (tenement.supervisor.DeployError("a:b", "failed"), 500),
        (ApiError(403, "no"), 403),
        (TenementError("anything else"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_status_for(error: TenementError, status: int) -> None:
    assert status_for(error) == status
