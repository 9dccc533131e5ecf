"""tenement.toml text -> Config: defaults, every key, aliases, invalid values, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenement.config import (
    Config,
    ConfigError,
    Mount,
    Routing,
    Service,
    Settings,
    TlsSettings,
    UnsupportedIsolation,
    parse_config,
    read_config_file,
)
from tenement.ids import NAME_RULE

CONFIGS = Path(__file__).parents[2] / "data" / "configs"
CWD = Path("/work/dir")
SOURCE = Path("/etc/tenement/tenement.toml")


def parse(text: str) -> Config:
    return parse_config(text, source=SOURCE, cwd=CWD)


def test_minimal_service_gets_every_default() -> None:
    config = parse('[service.notes]\ncommand = "python3 app.py"\n')

    assert config.settings == Settings(data_dir=CWD / "tenement-data")
    assert config.settings.tls == TlsSettings()
    assert config.services == {"notes": Service(name="notes", command="python3 app.py")}
    notes = config.services["notes"]
    assert (notes.isolation, notes.socket, notes.restart) == (
        "namespace",
        "/tmp/tenement/{name}-{id}.sock",
        "on-failure",
    )
    assert (notes.startup_timeout, notes.request_timeout, notes.stop_timeout) == (10, 30, 5)
    assert config.instances == {}
    assert config.routing == Routing()
    assert config.warnings == ()
    assert config.source == SOURCE


def test_empty_file_is_a_valid_config() -> None:
    assert parse("") == Config(settings=Settings(data_dir=CWD / "tenement-data"), source=SOURCE)


def test_every_key_is_read() -> None:
    path = CONFIGS / "every_key.toml"
    config = read_config_file(path, cwd=CWD)

    assert config.warnings == ()
    assert config.settings == Settings(
        data_dir=Path("/srv/tenement"),
        health_check_interval=5,
        max_restarts=7,
        restart_window=120,
        backoff_base_ms=250,
        backoff_max_ms=8000,
        database_url="postgresql://ten@127.0.0.1/ten",
        wake_any_id=True,
        workers=3,
        tls=TlsSettings(
            enabled=True,
            acme_email="ops@example.com",
            domain="example.com",
            cache_dir=Path("/srv/acme"),
            staging=True,
            https_port=8443,
            http_port=8081,
            dns_provider="cloudflare",
        ),
    )
    assert config.services["api"] == Service(
        name="api",
        command="/usr/bin/api",
        args=("--port", "{port}", "--data", "{data_dir}/{name}/{id}"),
        isolation="process",
        socket="/run/api/{name}-{id}.sock",
        health="/healthz",
        env={"MODE": "prod", "SOCK": "{socket}"},
        workdir="/srv/api",
        restart="always",
        idle_timeout=60,
        startup_timeout=20,
        request_timeout=45,
        stop_timeout=12.5,
        memory_limit_mb=512,
        cpu_shares=200,
        storage_quota_mb=1024,
        storage_persist=False,
        kernel="/boot/vmlinux",
        rootfs="/srv/rootfs",
        memory_mb=1024,
        vcpus=2,
        vsock_port=6000,
        image="docker.io/library/python:3.12",
        mounts=(Mount("/srv/shared", "/shared", readonly=True), Mount("/srv/cache", "/cache")),
    )
    assert config.instances == {"api": ("prod", "staging")}
    assert config.routing == Routing(default="api", subdomain={"www": "api"}, path={"/api": "api"})
    assert config.source == path


def test_services_keep_file_order() -> None:
    text = "".join(f'[service.{name}]\ncommand = "x"\n' for name in ("zeta", "alpha", "mid"))
    assert list(parse(text).services) == ["zeta", "alpha", "mid"]


def test_env_as_a_table_or_inline_is_the_same() -> None:
    table = parse('[service.a]\ncommand = "x"\n[service.a.env]\nK = "v"\n')
    inline = parse('[service.a]\ncommand = "x"\nenv = { K = "v" }\n')
    assert table.services == inline.services
    assert table.services["a"].env == {"K": "v"}


def test_durations_accept_fractions() -> None:
    config = parse(
        '[settings]\nhealth_check_interval = 2.5\n[service.a]\ncommand = "x"\n'
        "idle_timeout = 0\nstop_timeout = 0.5\n"
    )
    assert config.settings.health_check_interval == 2.5
    assert config.services["a"].idle_timeout == 0
    assert config.services["a"].stop_timeout == 0.5


# -- compatibility with older configs ---------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected_services", "warnings"),
    [
        pytest.param(
            "reference_init.toml",
            {
                "notes": Service(
                    name="notes",
                    command="uv run python app.py",
                    health="/health",
                    idle_timeout=300,
                    storage_persist=True,
                    isolation="process",
                )
            },
            [],
            id="what-reference-ten-init-writes",
        ),
        pytest.param(
            "v0_1_process_tables.toml",
            {
                "api": Service(
                    name="api",
                    command="./api",
                    args=("--port", "{port}"),
                    socket="/tmp/{name}-{id}.sock",
                    health="/health",
                    workdir="/srv/api",
                    restart="always",
                    env={"DATABASE_PATH": "{data_dir}/{id}/app.db"},
                )
            },
            [
                ":8: [process.api]: `[process.X]` is deprecated since 0.3; "
                "use `[service.api]` instead"
            ],
            id="v0.1-process-tables",
        ),
        pytest.param(
            "runtime_alias.toml",
            {"worker": Service(name="worker", command="python3 worker.py", isolation="process")},
            [
                ":4: [service.worker] runtime: `runtime` is deprecated since 0.3; "
                "use `isolation` instead"
            ],
            id="runtime-alias",
        ),
    ],
)
def test_older_configs_still_load(
    filename: str, expected_services: dict[str, Service], warnings: list[str]
) -> None:
    path = CONFIGS / filename
    config = read_config_file(path, cwd=CWD)

    assert config.services == expected_services
    assert [str(w) for w in config.warnings] == [f"{path}{text}" for text in warnings]
    assert {w.category for w in config.warnings} <= {"deprecated"}


def test_v0_1_settings_are_kept() -> None:
    config = read_config_file(CONFIGS / "v0_1_process_tables.toml", cwd=CWD)
    assert config.settings == Settings(
        data_dir=Path("/var/lib/tenement"),
        health_check_interval=15,
        max_restarts=5,
        restart_window=600,
    )


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        pytest.param(
            "process_and_service_same_name.toml",
            ":4: [process.api]: service 'api' is defined in both [service.api] and "
            "[process.api]; keep only [service.api]",
            id="process-and-service-same-name",
        ),
        pytest.param(
            "runtime_and_isolation.toml",
            ":4: [service.api] runtime: both `isolation` and its deprecated alias `runtime` "
            "are set; keep `isolation`",
            id="runtime-and-isolation",
        ),
    ],
)
def test_alias_conflicts_fail(filename: str, expected: str) -> None:
    path = CONFIGS / filename
    with pytest.raises(ConfigError) as caught:
        read_config_file(path, cwd=CWD)
    assert caught.value.problems == (f"{path}{expected}",)
    assert str(caught.value).startswith(f"{path}{expected}")
    assert caught.value.exit_code == 2


# -- invalid values: one ConfigError naming file, line, key and what is allowed ---------

LONG = "x" * 64

INVALID = [
    (
        '[settings]\nmax_restarts = "3"\n',
        2,
        "settings",
        "max_restarts",
        'expected a whole number (e.g. 3), got the string "3"',
        "string-for-int",
    ),
    (
        "[settings]\nhealth_check_interval = true\n",
        2,
        "settings",
        "health_check_interval",
        "expected a number of seconds (e.g. 30), got the boolean true",
        "bool-for-seconds",
    ),
    (
        "[settings]\nrestart_window = -1\n",
        2,
        "settings",
        "restart_window",
        "expected 0 or more seconds, got -1",
        "negative-duration",
    ),
    (
        "[settings]\nhealth_check_interval = 0\n",
        2,
        "settings",
        "health_check_interval",
        "expected more than 0 seconds, got 0",
        "zero-health-interval",
    ),
    (
        "[settings]\nrestart_window = nan\n",
        2,
        "settings",
        "restart_window",
        "expected a finite number of seconds, got nan",
        "nan-duration",
    ),
    (
        "[settings]\nbackoff_max_ms = 1.5\n",
        2,
        "settings",
        "backoff_max_ms",
        "expected a whole number (e.g. 3), got the number 1.5",
        "float-for-ms",
    ),
    (
        '[settings]\nwake_any_id = "yes"\n',
        2,
        "settings",
        "wake_any_id",
        'expected true or false, got the string "yes"',
        "string-for-bool",
    ),
    (
        '[settings]\ndata_dir = "~/tenement"\n',
        2,
        "settings",
        "data_dir",
        "path \"~/tenement\" starts with '~'. Tilde is not expanded; pass an absolute path "
        "(e.g. $HOME/.local/share/tenement) instead.",
        "tilde-data-dir",
    ),
    (
        '[settings]\ndata_dir = ""\n',
        2,
        "settings",
        "data_dir",
        "expected a non-empty string, got an empty one",
        "empty-data-dir",
    ),
    (
        '[settings.tls]\ncache_dir = "~/acme"\n',
        2,
        "settings.tls",
        "cache_dir",
        "path \"~/acme\" starts with '~'. Tilde is not expanded; pass an absolute path "
        "(e.g. $HOME/.local/share/tenement) instead.",
        "tilde-cache-dir",
    ),
    (
        "[settings.tls]\nhttps_port = 70000\n",
        2,
        "settings.tls",
        "https_port",
        "expected a TCP port from 1 to 65535, got 70000",
        "port-out-of-range",
    ),
    (
        "settings = 1\n",
        1,
        "",
        "settings",
        "expected a table ([settings]), got the integer 1",
        "settings-not-a-table",
    ),
    (
        '[service.a]\ncommand = "x"\nisolation = "gvisor"\n',
        3,
        "service.a",
        "isolation",
        "expected one of process, namespace, sandbox, litebox, quark, firecracker, qemu; "
        'got the string "gvisor"',
        "unknown-isolation",
    ),
    (
        '[service.a]\ncommand = "x"\nrestart = "sometimes"\n',
        3,
        "service.a",
        "restart",
        'expected one of always, on-failure, never; got the string "sometimes"',
        "unknown-restart",
    ),
    (
        '[service.a]\ncommand = "x"\nhealth = "health"\n',
        3,
        "service.a",
        "health",
        'expected an HTTP path starting with "/" (e.g. "/health"), got "health"',
        "health-not-a-path",
    ),
    (
        '[service.a]\ncommand = "x"\nidle_timeout = -5\n',
        3,
        "service.a",
        "idle_timeout",
        "expected 0 or more seconds, got -5",
        "negative-idle-timeout",
    ),
    (
        '[service.a]\ncommand = "x"\nstop_timeout = "5s"\n',
        3,
        "service.a",
        "stop_timeout",
        'expected a number of seconds (e.g. 30), got the string "5s"',
        "string-stop-timeout",
    ),
    (
        '[service.a]\ncommand = "x"\nmemory_limit_mb = -1\n',
        3,
        "service.a",
        "memory_limit_mb",
        "expected 0 or more, got -1",
        "negative-limit",
    ),
    (
        '[service.a]\ncommand = "x"\nargs = "--port"\n',
        3,
        "service.a",
        "args",
        'expected an array of strings (e.g. ["--port", "{port}"]), got the string "--port"',
        "args-not-a-list",
    ),
    (
        '[service.a]\ncommand = "x"\nargs = ["--port", 80]\n',
        3,
        "service.a",
        "args",
        "expected an array of strings, but it holds the integer 80",
        "args-with-a-number",
    ),
    (
        '[service.a]\ncommand = "x"\n\n[service.a.env]\nPORT2 = 8080\n',
        5,
        "service.a.env",
        "PORT2",
        'expected a string, got the integer 8080 (quote it: PORT2 = "...")',
        "env-number-value",
    ),
    (
        '[service.a]\ncommand = "x"\nenv = { "A=B" = "c" }\n',
        3,
        "service.a.env",
        "A=B",
        "'A=B' is not a valid environment variable name",
        "env-bad-name",
    ),
    (
        '[service.a]\nhealth = "/h"\n',
        1,
        "service.a",
        None,
        "missing required key 'command' (e.g. command = \"python3 app.py\")",
        "missing-command",
    ),
    (
        '[service.a]\ncommand = ""\n',
        2,
        "service.a",
        "command",
        "expected a non-empty string, got an empty one",
        "empty-command",
    ),
    (
        '[service.a]\ncommand = "python3 \'app.py"\n',
        2,
        "service.a",
        "command",
        "cannot split the command into words: No closing quotation",
        "unbalanced-quote",
    ),
    (
        '[service.a]\ncommand = "x"\n[[service.a.mounts]]\nsource = "/a"\n',
        3,
        "service.a.mounts",
        None,
        "missing required key 'destination'",
        "mount-without-destination",
    ),
    (
        '[service.a]\ncommand = "x"\nmounts = "/a:/b"\n',
        3,
        "service.a",
        "mounts",
        'expected an array of tables ([[service.a.mounts]]), got the string "/a:/b"',
        "mounts-not-tables",
    ),
    (
        '[service."my app"]\ncommand = "x"\n',
        1,
        "service.my app",
        None,
        f"service name 'my app' must be {NAME_RULE}",
        "service-name-with-space",
    ),
    (
        f'[service.{LONG}]\ncommand = "x"\n',
        1,
        f"service.{LONG}",
        None,
        f"service name '{LONG}' must be {NAME_RULE}",
        "service-name-too-long",
    ),
    (
        '[service]\ncommand = "x"\n',
        2,
        "service",
        "command",
        'expected a table ([service.command] with command = ...), got the string "x"',
        "keys-directly-under-service",
    ),
    (
        '[service.a]\ncommand = "x"\n[instances]\nb = ["one"]\n',
        4,
        "instances",
        "b",
        "Instance references undefined service 'b'. Define it in [service.b] first.",
        "instances-undefined-service",
    ),
    (
        '[service.notes]\ncommand = "x"\n[instances]\nnote = ["one"]\n',
        4,
        "instances",
        "note",
        "Instance references undefined service 'note'. Define it in [service.note] first. "
        "(did you mean 'notes'?)",
        "instances-undefined-near-miss",
    ),
    (
        '[service.a]\ncommand = "x"\n[instances]\na = "one"\n',
        4,
        "instances",
        "a",
        'expected an array of strings (e.g. ["--port", "{port}"]), got the string "one"; '
        'write a = ["alice", "bob"]',
        "instances-not-a-list",
    ),
    (
        '[service.a]\ncommand = "x"\n[instances]\na = ["ok", "not ok"]\n',
        4,
        "instances",
        "a",
        f"tenant id 'not ok' must be {NAME_RULE}",
        "instances-bad-tenant-id",
    ),
    (
        '[service.a]\ncommand = "x"\n[instances]\na = ["' + LONG + '"]\n',
        4,
        "instances",
        "a",
        f"tenant id '{LONG}' must be {NAME_RULE}",
        "instances-tenant-id-too-long",
    ),
    (
        "[routing.subdomain]\nwww = 1\n",
        2,
        "routing.subdomain",
        "www",
        'expected a string, got the integer 1 (quote it: www = "...")',
        "routing-map-value",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "table", "key", "message"),
    [pytest.param(*case[:-1], id=case[-1]) for case in INVALID],
)
def test_invalid_value_is_one_error_naming_file_line_and_key(
    text: str, line: int, table: str, key: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    where = f"[{table}] {key}" if table and key else f"[{table}]" if table else key
    assert str(error) == f"{SOURCE}:{line}: {where}: {message}"
    assert (error.path, error.line, error.table, error.key) == (SOURCE, line, table, key)
    assert error.exit_code == 2
    assert isinstance(error, ValueError)


def test_every_problem_is_listed_in_the_one_error() -> None:
    text = (
        '[settings]\nmax_restarts = -1\n[service.a]\nisolation = "vm"\n[instances]\nghost = ["x"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.problems == (
        f"{SOURCE}:2: [settings] max_restarts: expected 0 or more, got -1",
        f"{SOURCE}:4: [service.a] isolation: expected one of process, namespace, sandbox, "
        'litebox, quark, firecracker, qemu; got the string "vm"',
        f"{SOURCE}:3: [service.a]: missing required key 'command' "
        '(e.g. command = "python3 app.py")',
        f"{SOURCE}:6: [instances] ghost: Instance references undefined service 'ghost'. "
        "Define it in [service.ghost] first.",
    )
    assert str(caught.value) == "\n".join(caught.value.problems)
    assert caught.value.line == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a = [\n", f"{SOURCE}:1: invalid TOML: Invalid value\n  1 | a = [", id="eof"),
        pytest.param(
            '[service.a]\ncommand = "x" y\n',
            f"{SOURCE}:2:15: invalid TOML: Expected newline or end of document after a "
            f'statement\n  2 | command = "x" y\n    |               ^',
            id="junk-after-value",
        ),
        pytest.param(
            '[service.a]\ncommand = "x"\n[service.a]\ncommand = "y"\n',
            f"{SOURCE}:3:11: invalid TOML: Cannot declare ('service', 'a') twice\n"
            "  3 | [service.a]\n    |           ^",
            id="duplicate-table",
        ),
    ],
)
def test_malformed_toml_names_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == expected
    assert caught.value.exit_code == 2


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "tenement.toml"
    path.write_bytes(b'[service.a]\ncommand = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"tenement.toml:2: not valid UTF-8 \(byte 26\)"):
        read_config_file(path, cwd=tmp_path)


# -- unknown keys and tables warn, with a did-you-mean ----------------------------------

UNKNOWN = [
    (
        "[settings]\nhealth_interval = 5\n",
        ":2: [settings] health_interval: unknown key, "
        "ignored (did you mean 'health_check_interval'?)",
        "settings-typo",
    ),
    (
        '[service.a]\ncommand = "x"\nidle_timout = 5\n',
        ":3: [service.a] idle_timout: unknown key, ignored (did you mean 'idle_timeout'?)",
        "service-typo",
    ),
    (
        '[service.a]\ncommand = "x"\nisolaton = "process"\n',
        ":3: [service.a] isolaton: unknown key, ignored (did you mean 'isolation'?)",
        "isolation-typo",
    ),
    (
        "[settings]\nidle_timeout = 5\n",
        ":2: [settings] idle_timeout: unknown key, ignored "
        "('idle_timeout' belongs in [service.NAME])",
        "service-key-in-settings",
    ),
    (
        '[service.a]\ncommand = "x"\nmax_restarts = 5\n',
        ":3: [service.a] max_restarts: unknown key, ignored ('max_restarts' belongs in [settings])",
        "settings-key-in-service",
    ),
    (
        '[settings.tls]\nemail = "a@b.c"\n',
        ":2: [settings.tls] email: unknown key, ignored (did you mean 'acme_email'?)",
        "tls-typo",
    ),
    (
        '[services.a]\ncommand = "x"\n',
        ":1: [services]: unknown table, ignored (did you mean 'service'?)",
        "services-plural",
    ),
    (
        "[setings]\n",
        ":1: [setings]: unknown table, ignored (did you mean 'settings'?)",
        "settings-typo-table",
    ),
    (
        "[instance]\n",
        ":1: [instance]: unknown table, ignored (did you mean 'instances'?)",
        "instances-singular",
    ),
    ("version = 2\n", ":1: version: unknown key, ignored", "top-level-key"),
    (
        '[service.a]\ncommand = "x"\n[service.a.limits]\nmemory = 5\n',
        ":3: [service.a.limits]: unknown table, ignored",
        "unknown-sub-table",
    ),
    (
        '[service.a]\ncommand = "x"\n[[service.a.mounts]]\nsource = "/a"\ndestination = "/b"\n'
        "read_only = true\n",
        ":6: [service.a.mounts] read_only: unknown key, ignored (did you mean 'readonly'?)",
        "mount-typo",
    ),
    (
        '[routing]\ndefaults = "a"\n',
        ":2: [routing] defaults: unknown key, ignored (did you mean 'default'?)",
        "routing-typo",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [pytest.param(*case[:-1], id=case[-1]) for case in UNKNOWN]
)
def test_unknown_key_warns_and_loads(text: str, expected: str) -> None:
    config = parse(text)
    assert [str(w) for w in config.warnings] == [f"{SOURCE}{expected}"]
    assert config.warnings[0].category == "unknown"
    assert config.warnings[0].path == SOURCE


def test_unknown_key_does_not_change_the_known_ones() -> None:
    typo = parse('[service.a]\ncommand = "x"\nidle_timout = 5\n')
    assert typo.services == parse('[service.a]\ncommand = "x"\n').services


# -- isolations this build cannot run load with a warning -------------------------------


@pytest.mark.parametrize("isolation", ["sandbox", "litebox", "quark", "firecracker", "qemu"])
def test_unsupported_isolation_loads_with_a_warning(isolation: str) -> None:
    config = parse(f'[service.a]\ncommand = "x"\nisolation = "{isolation}"\n')
    message = (
        f"isolation '{isolation}' is not supported by this build (supported: process, namespace)"
    )
    assert [str(w) for w in config.unsupported()] == [
        f"{SOURCE}:3: [service.a] isolation: {message}; its instances will not start"
    ]
    with pytest.raises(UnsupportedIsolation) as caught:
        config.services["a"].require_supported()
    assert str(caught.value) == f"service 'a': {message}"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("isolation", ["process", "namespace"])
def test_supported_isolation_has_no_warning(isolation: str) -> None:
    config = parse(f'[service.a]\ncommand = "x"\nisolation = "{isolation}"\n')
    assert config.warnings == ()
    config.services["a"].require_supported()


def test_tenant_listed_twice_is_started_once_with_a_warning() -> None:
    config = parse('[service.a]\ncommand = "x"\n[instances]\na = ["t1", "t2", "t1"]\n')
    assert config.instances == {"a": ("t1", "t2")}
    assert [str(w) for w in config.warnings] == [
        f"{SOURCE}:4: [instances] a: tenant t1 listed more than once; started once"
    ]


# -- data_dir ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml_value", "override", "expected"),
    [
        pytest.param(None, None, CWD / "tenement-data", id="default-relative-to-cwd"),
        pytest.param("./data", None, CWD / "data", id="toml-relative-to-cwd"),
        pytest.param("../data", None, Path("/work/data"), id="toml-parent-normalised"),
        pytest.param("/srv/t", None, Path("/srv/t"), id="toml-absolute"),
        pytest.param("/srv/t", Path("/flag"), Path("/flag"), id="override-wins"),
        pytest.param("/srv/t", Path("rel"), CWD / "rel", id="relative-override"),
    ],
)
def test_data_dir_is_absolute(
    toml_value: str | None, override: Path | None, expected: Path
) -> None:
    text = f'[settings]\ndata_dir = "{toml_value}"\n' if toml_value else ""
    config = parse_config(text, cwd=CWD, data_dir=override)
    assert config.settings.data_dir == expected
    assert config.settings.data_dir.is_absolute()


def test_tilde_override_is_rejected_with_the_reference_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("", cwd=CWD, data_dir=Path("~/t"))
    assert str(caught.value) == (
        "--data-dir path \"~/t\" starts with '~'. Tilde is not expanded; pass an absolute "
        "path (e.g. $HOME/.local/share/tenement) instead."
    )
    assert caught.value.exit_code == 2


def test_error_message_keeps_the_warnings_that_explain_it() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('[service.a]\ncomand = "x"\n')
    assert str(caught.value) == (
        f"{SOURCE}:1: [service.a]: missing required key 'command' "
        '(e.g. command = "python3 app.py")\n'
        f"warning: {SOURCE}:2: [service.a] comand: unknown key, ignored "
        "(did you mean 'command'?)"
    )
    assert len(caught.value.problems) == 1


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "tenement.toml"
    path.write_bytes(b'\xef\xbb\xbf[service.a]\ncommand = "x"\n')
    assert list(read_config_file(path, cwd=tmp_path).services) == ["a"]
