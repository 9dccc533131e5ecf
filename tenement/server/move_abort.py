"""``ten move --abort``: a move stopped before its hand-over puts everything back.

Each move under way (``moves.py``) runs its steps before the hand-over (stopping, and
sending, which packs as it goes) in a cancel scope of its own, :class:`Abort`. Aborting
it cancels that scope; the move then fails as any move that fails before the hand-over
does: the tenant starts here again with its data, its held requests are served here,
and the destination is asked to remove anything it took in. The move's caller is
answered 409, saying so.

From the hand-over on it is too late: the hand-over transaction is never cancelled
halfway (it runs outside the scope, and an abort is refused once the step is reached).
The tenant is then the destination's; ``ten move`` brings it back.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import trio

from tenement.api.errors import ApiError

#: the steps of a move that an abort may stop (the ones before the hand-over)
ABORTABLE = frozenset({"stopping", "sending"})
#: how long an abort waits for the tenant to be back (started here again, if it ran):
#: within the 120 s a relayed call's answer may take (``server/relay.py``); the packing
#: thread stops at its next piece (it is not left behind, writing)
BACK_WAIT_SECONDS = 90.0
#: how long an aborted move waits for the destination to remove what it took in
DISCARD_SECONDS = 30.0


@attrs.define
class Abort:
    """How one move under way is aborted: what it does before the hand-over runs in
    ``scope``; ``at`` is when it was aborted (None: it was not); ``back`` is set once
    the tenant is here again after a failed or aborted move."""

    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    at: float | None = None
    step: str = ""
    back: trio.Event = attrs.field(factory=trio.Event)

    def aborted_error(self, instance_id: str, to: str, node: str) -> ApiError:
        """The move's own answer once it was aborted."""
        when = time.strftime("%H:%M:%S UTC", time.gmtime(self.at or time.time()))
        return ApiError(
            409,
            f"The move of {instance_id} to fleet node {to} was aborted (ten move --abort) at "
            f"{when}, while {_doing(self.step)}: nothing was moved; it runs on fleet node "
            f"{node} again, with its data",
        )


async def abort(abort: Abort, step: str, instance_id: str, to: str, node: str) -> dict[str, Any]:
    """Abort the move of ``instance_id`` (now at ``step``), and wait (at most
    :data:`BACK_WAIT_SECONDS`) until the tenant is back here; what was done.

    Raises:
        ApiError: 409 from the hand-over on: the tenant is ``to``'s already.
    """
    if step not in ABORTABLE:
        raise ApiError(
            409,
            f"Too late to abort the move of {instance_id}: it is being handed over to fleet "
            f"node {to} (step {step}), which runs it from now on; move it back with "
            f"ten move {instance_id} --to {node} once it is there",
        )
    if abort.at is None:
        abort.at, abort.step = time.time(), step
        abort.scope.cancel()
    with trio.move_on_after(BACK_WAIT_SECONDS):
        await abort.back.wait()
    return {
        "id": instance_id,
        "aborted": True,
        "step": abort.step,
        "to": to,
        "runs_on": node,
        "back": abort.back.is_set(),
    }


def _doing(step: str) -> str:
    return {
        "stopping": "stopping it",
        "sending": "sending its data",
    }.get(step, step)
