"""The values a tenement.toml describes: frozen attrs objects, defaults, templates, JSON form.

Nothing here reads a file; :mod:`tenement.config._parse` builds these from TOML text and
:mod:`tenement.config._discovery` finds the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from tenement.errors import TenementError

SECONDS = 1.0

#: every isolation a config may name (the reference's ``RuntimeType`` values)
ISOLATIONS = ("process", "namespace", "sandbox", "litebox", "quark", "firecracker", "qemu")
#: the isolations this build can start; others load, but `ten config --check` and spawn reject them
SUPPORTED_ISOLATIONS = ("process", "namespace")
RESTART_POLICIES = ("always", "on-failure", "never")

#: the most serving processes ``ten serve`` runs: each is one Python process proxying on
#: one core, so past the CPU count more add memory, not throughput; a typo such as
#: 100000 would otherwise fork until the machine runs out of memory
MAX_WORKERS = 256

DEFAULT_DATA_DIR = Path("tenement-data")
#: systemd's range for DynamicUser= (61184-65519): no distribution hands these out
DEFAULT_TENANT_UIDS = (61184, 65519)
CONFIG_FILENAME = "tenement.toml"


class ConfigError(TenementError, ValueError):
    """tenement.toml (or a --data-dir/--config value) cannot be used as it is.

    Attributes:
        path: the file the problem is in, when there is one.
        line: 1-based line of the problem in that file, when known.
        table: the TOML table (``"service.notes"``), ``""`` for the top level, None if unknown.
        key: the key inside that table, when the problem is about one key.
        problems: every problem found, one human line each (the message lists them all).
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        table: str | None = None,
        key: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.table = table
        self.key = key
        self.problems = problems or (message,)


class ConfigNotFound(ConfigError, FileNotFoundError):
    """No tenement.toml where we looked; the message says where that was."""


class UnsupportedIsolation(ConfigError):
    """A service asks for an isolation this build cannot start (e.g. ``sandbox``)."""


def locate(path: Path | None, line: int | None, table: str | None, key: str | None) -> str:
    """``/etc/tenement.toml:7: [service.notes] idle_timeout`` — where a problem is."""
    where = str(path) if path is not None else "<config>"
    if line is not None:
        where = f"{where}:{line}"
    subject = []
    if table:
        subject.append(f"[{table}]")
    if key is not None:
        subject.append(key)
    return f"{where}: {' '.join(subject)}" if subject else where


@attrs.frozen
class ConfigWarning:
    """Something in tenement.toml that was accepted but deserves attention.

    ``str()`` is the line shown to the user: ``file:line: [table] key: message``.

    Attributes:
        category: ``unknown`` (ignored key or table), ``deprecated`` (old spelling, still
            honoured), ``duplicate`` (a repeated value, kept once) or ``unsupported``
            (loads, but this build cannot run it; `ten config --check` rejects it).
    """

    message: str
    category: str
    path: Path | None = None
    line: int | None = None
    table: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        return f"{locate(self.path, self.line, self.table, self.key)}: {self.message}"


def render(
    template: str,
    *,
    name: str,
    id: str,
    data_dir: Path | str,
    socket: str,
    port: int | None,
) -> str:
    """Fill a command/args/env template, as the reference does.

    Plain string replacement in this order: ``{name}`` (service), ``{id}`` (tenant),
    ``{data_dir}`` (the global data dir, not the instance's), ``{socket}`` (the resolved
    socket path), ``{port}`` (the allocated port, empty when there is none). Other braces
    are left as they are.
    """
    return (
        template.replace("{name}", name)
        .replace("{id}", id)
        .replace("{data_dir}", str(data_dir))
        .replace("{socket}", socket)
        .replace("{port}", "" if port is None else str(port))
    )


@attrs.frozen
class TlsSettings:
    """``[settings.tls]``: built-in ACME TLS (``tenement.tls``)."""

    enabled: bool = False
    acme_email: str | None = None
    domain: str | None = None
    #: None means {data_dir}/acme
    cache_dir: Path | None = None
    staging: bool = False
    https_port: int = 443
    http_port: int = 80
    dns_provider: str | None = None
    #: the ACME directory URL (any RFC 8555 CA); None means Let's Encrypt's, its staging
    #: one with ``staging``. Added in 0.3.
    directory: str | None = None
    #: how the CA validates a host: ``tls-alpn-01`` on the HTTPS port (as 0.2.2) or
    #: ``http-01`` on the HTTP port. Added in 0.3.
    challenge: str = "tls-alpn-01"


@attrs.frozen
class Settings:
    """``[settings]``. After loading, ``data_dir`` is absolute."""

    data_dir: Path = DEFAULT_DATA_DIR
    health_check_interval: float = 10 * SECONDS
    max_restarts: int = 3
    restart_window: float = 300 * SECONDS
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 60000
    #: any SQLAlchemy URL; None means sqlite at {data_dir}/tenement.db
    database_url: str | None = None
    #: how long ``ten serve`` keeps trying to reach a database server that is down or
    #: starting (refused, unreachable) before it gives up, in seconds; 0: try once. A
    #: wrong password, a missing database or TLS required fail at once. Added in 0.3.
    database_start_timeout: float = 60 * SECONDS
    #: the reference's behaviour: any id on a direct route spawns an instance
    wake_any_id: bool = False
    #: serving processes of ``ten serve``; 0 means one per CPU; at most MAX_WORKERS
    workers: int = 1
    #: uids (inclusive) allotted to services without ``user``, one each, when the server
    #: can change uid; systemd's DynamicUser= range. Added in 0.3.
    tenant_uids: tuple[int, int] = DEFAULT_TENANT_UIDS
    #: false: tenants run as the server's user even where it could change uid (a warning
    #: at start says so); for development and tests only. Added in 0.3.
    tenant_users: bool = True
    #: the most a client may pause between two reads of a request body, in seconds (then
    #: it must keep 1 KiB/s on average); the connection is closed when it does not.
    #: Added in 0.3.
    body_timeout: float = 30 * SECONDS
    tls: TlsSettings = attrs.field(factory=TlsSettings)

    def database_url_or_default(self) -> str:
        """``database_url`` with ``{data_dir}`` filled in, else SQLite in data_dir."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir}/tenement.db"
        return self.database_url.replace("{data_dir}", str(self.data_dir))


@attrs.frozen
class Mount:
    """One ``[[service.X.mounts]]`` entry (container isolations only)."""

    source: str
    destination: str
    readonly: bool = False


@attrs.frozen
class Service:
    """``[service.<name>]``: how to run one app, once per tenant.

    Durations are seconds. ``idle_timeout`` None or 0 means never stop an idle instance.
    """

    name: str
    command: str
    args: tuple[str, ...] = ()
    isolation: str = "namespace"
    socket: str = "/tmp/tenement/{name}-{id}.sock"
    health: str | None = None
    env: dict[str, str] = attrs.field(factory=dict)
    workdir: str | None = None
    restart: str = "on-failure"
    idle_timeout: float | None = None
    startup_timeout: float = 10 * SECONDS
    request_timeout: float = 30 * SECONDS
    #: grace between SIGTERM to the process group and SIGKILL
    stop_timeout: float = 5 * SECONDS
    memory_limit_mb: int | None = None
    cpu_shares: int | None = None
    storage_quota_mb: int | None = None
    storage_persist: bool = True
    kernel: str | None = None
    rootfs: str | None = None
    memory_mb: int = 256
    vcpus: int = 1
    vsock_port: int = 5000
    image: str | None = None
    mounts: tuple[Mount, ...] = ()
    #: the system user its tenants run as (when the server can change uid); None: a uid
    #: of its own from ``settings.tenant_uids``. Added in 0.3.
    user: str | None = None
    #: whether a lost fleet node's instances of this service are started on another
    #: node; None: only when ``storage_persist`` is false (persisted data is on the lost
    #: disk). Added in 0.3.
    failover: bool | None = None
    #: the fleet nodes its instances may run on (the app is installed there only);
    #: None: any node. Needs ``[fleet]``. Added in 0.3.
    nodes: tuple[str, ...] | None = None

    def allows(self, node: str) -> bool:
        """Whether ``nodes`` lets an instance of this service run on fleet node ``node``."""
        return self.nodes is None or node in self.nodes

    @property
    def fails_over(self) -> bool:
        """``failover``, or its default: a tenant whose data persists stays on its node."""
        return self.failover if self.failover is not None else not self.storage_persist

    def socket_path(self, tenant: str) -> str:
        """The socket template with ``{name}`` and ``{id}`` filled (nothing else)."""
        return self.socket.replace("{name}", self.name).replace("{id}", tenant)

    def instance_dir(self, data_dir: Path, tenant: str) -> Path:
        """``{data_dir}/{name}/{id}``: the tenant's own directory (quota, storage_persist)."""
        return Path(data_dir) / self.name / tenant

    def unsupported_reason(self) -> str | None:
        """Why this build cannot start the service, or None when it can."""
        if self.isolation in SUPPORTED_ISOLATIONS:
            return None
        return (
            f"isolation '{self.isolation}' is not supported by this build "
            f"(supported: {', '.join(SUPPORTED_ISOLATIONS)})"
        )

    def require_supported(self) -> None:
        """Raise :class:`UnsupportedIsolation` if this build cannot start the service."""
        reason = self.unsupported_reason()
        if reason is not None:
            raise UnsupportedIsolation(
                f"service '{self.name}': {reason}", table=f"service.{self.name}", key="isolation"
            )


@attrs.frozen
class Routing:
    """``[routing]``: parsed for compatibility; the reference never used it either."""

    default: str | None = None
    subdomain: dict[str, str] = attrs.field(factory=dict)
    path: dict[str, str] = attrs.field(factory=dict)


#: [fleet] node_timeout: its default and bounds, in seconds. A node heartbeats every
#: second, so less than 2 s would declare a node down for one slow heartbeat; more than
#: 10 minutes leaves a lost node's tenants unanswered that long once failover exists.
DEFAULT_NODE_TIMEOUT = 10 * SECONDS
#: [fleet] secret_file's default, in the data dir
FLEET_SECRET_FILE = "fleet_secret"
MIN_NODE_TIMEOUT = 2 * SECONDS
#: [fleet] keep_moved's default: how long a node keeps a moved tenant's data (7 days)
DEFAULT_KEEP_MOVED = 7 * 24 * 3600 * SECONDS
MAX_NODE_TIMEOUT = 600 * SECONDS


@attrs.frozen
class Fleet:
    """``[fleet]`` (added in 0.3): this server is one node of several on one PostgreSQL
    database (docs/fleet.md). Read once at start."""

    #: this node's name, unique in the fleet; the host name when not set
    node: str
    #: ``host:port`` where the other nodes reach this one
    advertise: str
    #: how long a node may stay silent before a peer declares it down, in seconds
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    #: the file holding the fleet secret that node-to-node requests carry (absolute;
    #: ``{data_dir}/fleet_secret`` when not set)
    secret_file: Path | None = None
    #: how long the old node keeps a moved tenant's data (``moved-…``), in seconds
    keep_moved: float = DEFAULT_KEEP_MOVED


@attrs.frozen
class Config:
    """A whole tenement.toml with every default filled in.

    Build it with :func:`tenement.config.load_config` (discovery),
    :func:`tenement.config.read_config_file` or :func:`tenement.config.parse_config`;
    ``__init__`` takes finished values.
    """

    settings: Settings = attrs.field(factory=Settings)
    #: in file order
    services: dict[str, Service] = attrs.field(factory=dict)
    #: service name -> tenant ids spawned at start
    instances: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    routing: Routing = attrs.field(factory=Routing)
    #: ``[fleet]``; None on a single host (no such section)
    fleet: Fleet | None = None
    #: the file it was read from, None for a built-in config
    source: Path | None = None
    #: what was accepted but deserves attention (unknown keys, deprecated spellings, ...)
    warnings: tuple[ConfigWarning, ...] = attrs.field(default=(), eq=False)

    def unsupported(self) -> tuple[ConfigWarning, ...]:
        """The warnings that `ten config --check` turns into errors."""
        return tuple(w for w in self.warnings if w.category == "unsupported")


def config_as_dict(config: Config) -> dict[str, Any]:
    """The effective config as JSON-ready data (paths as strings, tuples as lists).

    Every key with its value or default; ``warnings`` are left out (they are not config).
    """

    def plain(instance: Any, field: Any, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    return attrs.asdict(
        config,
        value_serializer=plain,
        # no [fleet]: no key either, so that a single host's effective config (and what
        # a reload compares) is what it was before fleets existed
        filter=lambda field, value: (
            field.name != "warnings" and not (field.name == "fleet" and value is None)
        ),
    )
