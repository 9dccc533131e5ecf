"""What client commands say when something is wrong: server down, tokens, bad ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli.live import LiveServer, Outcome, free_port, invoke, ten

BAD_FORMAT = "Error: Invalid instance format '{}'. Use 'process:id' (e.g., {})\n"


@pytest.mark.parametrize(
    "args",
    [["spawn", "api"], ["stop", "api:"], ["restart", ":x"], ["health", "api"],
     ["weight", "api", "5"], ["deploy", "api"], ["logs", "api"]],
    ids=lambda args: args[0],
)  # fmt: skip
def test_bad_instance_format(tmp_path: Path, args: list[str]) -> None:
    # checked before any token or server is needed
    result = invoke(args, cwd=tmp_path)
    example = "api:v2" if args[0] == "deploy" else "api:prod"
    assert result == Outcome(1, "", BAD_FORMAT.format(args[1], example))


def test_invalid_names_in_an_instance(tmp_path: Path) -> None:
    result = invoke(["stop", "api:a b"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Invalid instance ID 'api:a b': 'a b' must be ")
    route = invoke(["route", "a.b", "--from", "v1", "--to", "v2"], cwd=tmp_path)
    assert route.exit_code == 1
    assert route.stderr.startswith("Error: Invalid process 'a.b': must be ")


@pytest.mark.parametrize("weight", ["256", "-1", "x"])
def test_weight_out_of_range_is_a_usage_error(tmp_path: Path, weight: str) -> None:
    result = invoke(["weight", "api:prod", weight, "--token", "t"], cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_server_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke(["ps", "--server", url, "--token", "t"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: Failed to connect to server at {url}\n")
    assert "Is `ten serve` running?" in result.stderr


def test_no_config_no_token(tmp_path: Path) -> None:
    result = invoke(["ps", "--server", "http://127.0.0.1:9"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: Could not load tenement.toml. Are you in a tenement project directory?\n"
    )
    assert "--token" in result.stderr


def test_token_file_missing_or_empty(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text('[settings]\ndata_dir = "d"\n')
    result = invoke(["ps", "--server", "http://127.0.0.1:9"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: No API token found. Tried:\n- --token flag\n- TENEMENT_TOKEN env var\n"
        f"- {tmp_path / 'd' / 'api_token'}\n\nRun `ten token-gen` first to create a token.\n"
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "api_token").write_text("  \n")
    result = invoke(["ps", "--server", "http://127.0.0.1:9"], cwd=tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: API token is empty (from ")
    assert "Run `ten token-gen`" in result.stderr
    blank = invoke(["ps"], cwd=tmp_path, env={"TENEMENT_TOKEN": " "})
    assert blank.stderr.startswith("Error: API token is empty (from TENEMENT_TOKEN)")


async def test_token_sources(live_server: LiveServer) -> None:
    empty = Outcome(0, f"No running instances\nServer: {live_server.url}\n", "")
    server = ["--server", live_server.url]
    # the token file, found through tenement.toml's data_dir ...
    assert invoke(["ps", *server], cwd=live_server.project) == empty
    # ... or through --data-dir / TENEMENT_DATA_DIR from anywhere
    elsewhere = live_server.project.parent
    assert invoke(["ps", *server, "--data-dir", str(live_server.data_dir)], cwd=elsewhere) == empty
    env = {"TENEMENT_DATA_DIR": str(live_server.data_dir)}
    assert invoke(["ps", *server], cwd=elsewhere, env=env) == empty
    # TENEMENT_TOKEN beats the file; --token beats TENEMENT_TOKEN
    env = {"TENEMENT_TOKEN": "wrong"}
    rejected = invoke(["ps", *server], cwd=live_server.project, env=env)
    assert rejected.exit_code == 1
    assert rejected.stderr.startswith("Error: Server returned 401 Unauthorized\n")
    assert "The token from TENEMENT_TOKEN was not accepted" in rejected.stderr
    assert "`ten token-gen`" in rejected.stderr
    assert invoke(["ps", *server, "--token", live_server.token], cwd=elsewhere, env=env) == empty


async def test_bad_token(live_server: LiveServer) -> None:
    for args in (["ps"], ["spawn", "api:prod"], ["logs"], ["logs", "-f"]):
        result = invoke(
            [*args, "--server", live_server.url, "--token", "nope"], cwd=live_server.project
        )
        assert result.exit_code == 1, args
        assert result.stdout == ""
        assert result.stderr.startswith("Error: Server returned 401 Unauthorized\n")
        assert "The token from --token was not accepted" in result.stderr


async def test_server_errors(live_server: LiveServer) -> None:
    assert ten(live_server, "spawn", "nope:x") == Outcome(1, "", "Error: Unknown process: nope\n")
    assert ten(live_server, "restart", "nope:x") == Outcome(1, "", "Error: Unknown process: nope\n")
    assert ten(live_server, "stop", "api:zzz") == Outcome(
        1, "", "Error: Instance not found: api:zzz\n"
    )
    assert ten(live_server, "weight", "api:zzz", "5") == Outcome(
        1, "", "Error: Instance not found: api:zzz\n"
    )
    assert ten(live_server, "health", "nope:x") == Outcome(0, "nope:x: unknown\n", "")
