"""`ten move`: a tenant and its data to another node of the fleet (docs/fleet.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.instances import echo_json, json_option, parse_instance
from tenement.cli.render import format_duration

if TYPE_CHECKING:
    from tenement.cli.client import ApiClient

#: how long the CLI waits for a move: the data is sent before the server answers
MOVE_TIMEOUT_SECONDS = 3600.0
#: data from which `ten move` asks first: its requests wait while it is sent
LARGE_BYTES = 1024**3
#: the rate the estimate of a move's pause assumes, in bytes/s: below the 180 MB/s
#: measured between two nodes on one host (BENCHMARKS.md, "Moves"), for a real network
ASSUMED_BYTES_PER_SECOND = 100 * 1024 * 1024


@click.command(short_help="Move an instance and its data to another fleet node")
@click.argument("instance")
@click.option("--to", "to", metavar="NODE", help="The node to move it to")
@click.option(
    "--keep-source",
    "keep_source",
    metavar="TIME",
    callback=lambda _ctx, _param, value: None if value is None else keep_time(value),
    help="How long the old node keeps its copy of the data: 3600, 90m, 12h, 7d "
    "(default: its [fleet] keep_moved, 7 days unless set; 0: removed at its next "
    "look, within 10 minutes)",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask first, however much data it has")
@click.option(
    "--abort",
    is_flag=True,
    help="Abort the move of INSTANCE under way (before the new node has it): it runs "
    "where it was again, with its data",
)
@json_option
@global_options
@pass_cli
def move(
    cli: CliContext,
    instance: str,
    to: str | None,
    keep_source: int | None,
    yes: bool,
    abort: bool,
    as_json: bool,
) -> None:
    """Move INSTANCE (process:id) and its data to fleet node NODE.

    Its requests wait while it moves (a pause, not an error): it is stopped, its data
    directory is sent to NODE and checked there, NODE runs it from then on. The data
    stays on the old node too, as moved-ID-TIME beside where it was, until its keep
    time passes. If anything fails before NODE has it, it runs where it was again, with
    its data. With 1 GiB of data or more, it says how much and how long its requests
    would wait, and asks first (--yes does not ask).

    With --abort (and no --to), the move of INSTANCE under way is stopped before NODE
    has it: it runs where it was again, with its data, and NODE keeps nothing of it.
    """
    ref = parse_instance(instance)
    from tenement.cli.client import open_client

    if abort:
        if to is not None or keep_source is not None:
            given = "--to" if to is not None else "--keep-source"
            raise click.UsageError(
                f"{given} does not go with --abort: ten move {ref} --abort stops the move of "
                f"{ref} under way, wherever it was going"
            )
        abort_move(cli, str(ref), as_json)
        return
    if to is None:
        raise click.UsageError(
            f"Missing option '--to': the fleet node to move {ref} to (ten nodes lists them); "
            f"or --abort, to stop its move under way"
        )

    body: dict[str, Any] = {"to": to}
    if keep_source is not None:
        body["keep_source"] = keep_source
    with open_client(cli) as client:
        if not yes:
            ask_if_large(client, str(ref), to)
        response = client.request(
            "POST",
            f"/api/instances/{ref}/move",
            json_body=body,
            timeout=MOVE_TIMEOUT_SECONDS,
        )
        if as_json:
            echo_json(response.text)
            return
        report = client.decode(response)
    click.echo(summary(report if isinstance(report, dict) else {}, str(ref), to))


def abort_move(cli: CliContext, instance: str, as_json: bool) -> None:
    """``ten move INSTANCE --abort``: what was undone."""
    from tenement.cli.client import open_client

    with open_client(cli) as client:
        response = client.request("DELETE", f"/api/instances/{instance}/move")
        if as_json:
            echo_json(response.text)
            return
        report = client.decode(response)
    report = report if isinstance(report, dict) else {}
    doing = {"stopping": "stopping it"}.get(str(report.get("step")), "sending its data")
    runs_on = report.get("runs_on", "?")
    click.echo(
        f"Aborted the move of {instance} to {report.get('to', '?')} (it was {doing}): "
        f"it runs on {runs_on} again, with its data"
        + ("" if report.get("back", True) else " (still starting there: ten ps shows it)")
    )


def summary(report: dict[str, Any], instance: str, to: str) -> str:
    """What the move did, in a few lines."""
    size = report.get("bytes") or 0
    lines = [f"Moved {instance} from {report.get('from', '?')} to {report.get('to', to)}"]
    lines.append(
        f"  stopped in {report.get('stop_secs', 0):.2f}s, "
        f"data {size / (1024 * 1024):.1f} MB ({report.get('entries', 0)} entries) sent in "
        f"{report.get('transfer_secs', 0):.2f}s, started in {report.get('start_secs', 0):.2f}s"
    )
    if report.get("kept"):
        until = report.get("kept_until")
        when = (
            f" until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))}"
            if isinstance(until, int | float)
            else ""
        )
        lines.append(f"  the old node keeps its copy of the data in {report['kept']}{when}")
    return "\n".join(lines)


def ask_if_large(client: ApiClient, instance: str, to: str) -> None:
    """Ask before moving 1 GiB or more (:data:`LARGE_BYTES`), saying how long its
    requests would wait. Its size is the owner's last measure (``/storage``); if that
    cannot be read, the move itself says what is wrong.

    Raises:
        click.ClickException: not confirmed (an answer other than yes, or no terminal
            to ask on): nothing was moved.
    """
    from tenement.cli.client import ServerError

    try:
        storage = client.decode(client.request("GET", f"/api/instances/{instance}/storage"))
    except ServerError:
        return
    used = storage.get("used_bytes") if isinstance(storage, dict) else None
    if not isinstance(used, int) or used < LARGE_BYTES:
        return
    wait = used / ASSUMED_BYTES_PER_SECOND
    click.echo(
        f"{instance} has {used / 1024**3:.1f} GiB of data: its requests wait while it is sent "
        f"to {to}, about {format_duration(wait)} at 100 MiB/s (more on a slower link).",
        err=True,
    )
    try:
        confirmed = click.confirm("Move it now?", default=False, err=True)
    except click.Abort:  # no answer: no terminal, or input closed
        confirmed = False
    if not confirmed:
        raise click.ClickException(
            f"Not moved: {instance} runs where it was. Pass --yes to move it without asking."
        )


#: what a --keep-source suffix counts
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def keep_time(text: str) -> int:
    """``--keep-source``: seconds, or a whole number with s, m, h or d after it."""
    digits, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 12:
        raise click.BadParameter(
            f"{text!r} is not a time: write seconds (3600) or a whole number with s, m, h "
            "or d after it (90m, 12h, 7d)",
            param_hint="--keep-source",
        )
    return int(digits) * _UNITS[unit]
