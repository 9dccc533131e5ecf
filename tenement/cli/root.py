"""The `ten` root group and its error handling.

One root group; each command group lives in its own module and is registered here
explicitly. Commands are thin: parse, call, render. Heavy imports happen inside the
callbacks so that client commands start fast.
"""

from __future__ import annotations

import click

from tenement._version import __version__
from tenement.cli.context import CliContext, global_options
from tenement.cli.output import discard_stdout
from tenement.errors import TenementError


class _UserError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click declares exit_code a ClassVar, yet reads it from the instance (main()):
        # one instance's code, as click's own Exit does
        self.exit_code = exit_code  # type: ignore[misc]


class TenGroup(click.Group):
    """Turns a :class:`TenementError` from any command into ``Error: ...`` and its exit code.

    A closed stdout ends the command quietly with exit 0 (see :mod:`tenement.cli.output`).
    """

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except TenementError as exc:
            raise _UserError(exc.message, exc.exit_code) from exc
        except BrokenPipeError:
            # The reader closed stdout (`ten ps | head -1`): it has what it wanted. Click
            # would exit 1 here, which fails `set -o pipefail` scripts.
            discard_stdout()
            ctx.exit(0)


@click.group(cls=TenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name="tenement", message="%(prog)s %(version)s"
)
@global_options
@click.pass_context
def ten(ctx: click.Context) -> None:
    """Hyperlightweight process hypervisor."""
    ctx.ensure_object(CliContext)


def _register() -> None:
    from tenement.cli import commands

    for command in commands.all_commands():
        ten.add_command(command)


_register()


def main() -> None:
    ten(prog_name="ten", obj=CliContext())
