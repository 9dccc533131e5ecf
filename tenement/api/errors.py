"""How the API answers a failure: one table from error class to HTTP status.

Every handler lets a :class:`~tenement.errors.TenementError` escape; :func:`status_for`
picks the status of the first class in :data:`STATUS_BY_ERROR` that the error is an
instance of (so a subclass answers like its parent), and the body is ``{"error": message}``
as the reference sends it. The table holds the classes themselves, not their names: a
renamed class is an import error here, not a 404 silently turned into a 500.
"""

from __future__ import annotations

from tenement.errors import TenementError
from tenement.ids import InvalidInstanceId
from tenement.supervisor import (
    DeployError,
    InstanceNotFound,
    NotAllowedHere,
    OwnedElsewhere,
    SpawnError,
    UnknownService,
    WakeError,
)

#: (error class, HTTP status), most specific class first (the first match wins): the
#: reference's codes, except that a service that is not configured is the client's
#: mistake, 404, where the reference answers 500
STATUS_BY_ERROR: tuple[tuple[type[TenementError], int], ...] = (
    (InvalidInstanceId, 400),
    (InstanceNotFound, 404),
    (UnknownService, 404),
    (SpawnError, 500),
    (DeployError, 500),
    (OwnedElsewhere, 409),
    (NotAllowedHere, 409),
    (WakeError, 500),
)


class ApiError(TenementError):
    """A failure with its HTTP status chosen at the raise site.

    Attributes:
        status: the HTTP status to answer with.
        message: the ``error`` field of the JSON body.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def status_for(error: TenementError) -> int:
    """The HTTP status for ``error``: its own ``status``, the table's, or 500."""
    if isinstance(error, ApiError):
        return error.status
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 500
