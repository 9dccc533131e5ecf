"""tenement.toml -> frozen attrs objects.

PLACEHOLDER: the data model below is the contract other layers use. The loader
(discovery, aliases, warnings, validation) is being written.
"""

from __future__ import annotations

from pathlib import Path

import attrs

SECONDS = 1.0

ISOLATIONS = ("process", "namespace", "sandbox", "litebox", "quark", "firecracker", "qemu")
SUPPORTED_ISOLATIONS = ("process", "namespace")


@attrs.frozen
class TlsSettings:
    enabled: bool = False
    acme_email: str | None = None
    domain: str | None = None
    cache_dir: Path | None = None
    staging: bool = False
    https_port: int = 443
    http_port: int = 80
    dns_provider: str | None = None


@attrs.frozen
class Settings:
    data_dir: Path = Path("tenement-data")
    health_check_interval: float = 10 * SECONDS
    max_restarts: int = 3
    restart_window: float = 300 * SECONDS
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 60000
    #: any SQLAlchemy URL; None means sqlite at {data_dir}/tenement.db
    database_url: str | None = None
    #: the reference's behaviour: any id on a direct route spawns an instance
    wake_any_id: bool = False
    tls: TlsSettings = attrs.field(factory=TlsSettings)


@attrs.frozen
class Mount:
    source: str
    destination: str
    readonly: bool = False


@attrs.frozen
class Service:
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


@attrs.frozen
class Routing:
    default: str | None = None
    subdomain: dict[str, str] = attrs.field(factory=dict)
    path: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Config:
    settings: Settings = attrs.field(factory=Settings)
    services: dict[str, Service] = attrs.field(factory=dict)
    #: service name -> tenant ids spawned at start
    instances: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    routing: Routing = attrs.field(factory=Routing)
    #: the file it was read from, None for a built-in config
    source: Path | None = None
