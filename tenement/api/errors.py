"""How the API answers a failure: one table from error class to HTTP status.

Every handler lets a :class:`~tenement.errors.TenementError` escape; :func:`status_for`
picks the status from the error's class (walking its bases, so a subclass inherits its
parent's status), and the body is ``{"error": message}`` as the reference sends it.
The table names classes rather than importing them so that the API's error mapping
does not pull the supervisor in at import time.
"""

from __future__ import annotations

from tenement.errors import TenementError

#: error class name -> HTTP status (the reference's codes, except that a service that is
#: not configured is the client's mistake: 404, where the reference answers 500)
STATUS_BY_ERROR = {
    "InvalidInstanceId": 400,
    "InstanceNotFound": 404,
    "UnknownService": 404,
    "SpawnError": 500,
    "DeployError": 500,
    "WakeError": 500,
}


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
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls.__name__)
        if status is not None:
            return status
    return 500
