"""The supervisor's errors; each message says what happened and what to do."""

from __future__ import annotations

from tenement.errors import TenementError


class UnknownService(TenementError, LookupError):
    """No ``[service.X]`` of that name (the reference's "Unknown process: X")."""

    def __init__(self, service: str) -> None:
        super().__init__(f"Unknown process: {service}")
        self.service = service


class InstanceNotFound(TenementError, LookupError):
    """No running (or failed) instance of that id."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Instance not found: {instance_id}")
        self.instance_id = instance_id


class WakeError(TenementError):
    """A request's instance could not be started in time (the proxy answers 503)."""

    def __init__(self, instance_id: str, message: str) -> None:
        super().__init__(message)
        self.instance_id = instance_id


class OwnedElsewhere(WakeError):
    """The instance runs on another fleet node: this one must not start a second copy."""

    def __init__(self, instance_id: str, node: str) -> None:
        super().__init__(
            instance_id,
            f"Instance {instance_id} runs on fleet node {node}, not on this one; manage it "
            "on that node (its requests are served through any node)",
        )
        self.node = node


class NotAllowedHere(WakeError):
    """A new instance of a service whose ``[service.X] nodes`` leave this fleet node out:
    it is not started here (the app may not be installed here)."""

    def __init__(self, instance_id: str, node: str, nodes: tuple[str, ...]) -> None:
        super().__init__(
            instance_id,
            f"Instance {instance_id} is not started on fleet node {node}: [service."
            f"{instance_id.partition(':')[0]}] nodes = {', '.join(nodes)} (the app runs there "
            "only); ten spawn places it on one of them",
        )
        self.node = node


class InstanceFailed(WakeError):
    """The instance is failed: requests do not start it until an operator does (503)."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            instance_id,
            f"Instance {instance_id} has failed; restart it by hand (ten restart {instance_id})",
        )


class RestartPending(WakeError):
    """The instance is in backoff and its restart is due after the request's deadline
    (503 with ``Retry-After``).

    Attributes:
        retry_after_seconds: seconds until the scheduled restart, rounded up.
    """

    def __init__(
        self, instance_id: str, retry_after_seconds: int, message: str | None = None
    ) -> None:
        super().__init__(
            instance_id,
            message
            or f"Instance {instance_id} is in backoff: its restart is due in "
            f"{retry_after_seconds} s; retry after that",
        )
        self.retry_after_seconds = retry_after_seconds


class Fenced(RestartPending):
    """This fleet node lost the database for ``node_timeout`` and stopped its tenants
    (self-fencing): it serves none until it is back in the fleet (503, ``Retry-After``)."""

    def __init__(self, instance_id: str, reason: str, retry_after_seconds: int) -> None:
        super().__init__(
            instance_id,
            retry_after_seconds,
            f"Instance {instance_id} is not served by this fleet node now: {reason}; "
            f"retry after {retry_after_seconds} s (another node may run it by then)",
        )


class DeployError(TenementError):
    """A deployed instance did not become healthy (it was stopped again)."""

    def __init__(self, instance_id: str, message: str) -> None:
        super().__init__(message)
        self.instance_id = instance_id


class SupervisorBusy(TenementError):
    """Another live server supervises the same database."""

    def __init__(self, holder: str, database: str) -> None:
        super().__init__(
            f"another tenement server ({holder}) is supervising the instances in {database}; "
            "stop it first, or give this server a different data_dir"
        )
        self.holder = holder
