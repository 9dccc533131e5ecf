"""`ten move --abort` as the mover decides it: the steps it may stop, and the one it may
not (the hand-over is never cut halfway)."""

from __future__ import annotations

import pytest
import trio

from tenement.api.errors import ApiError
from tenement.server.move_abort import Abort, abort


@pytest.mark.parametrize("step", ["handover", "starting"])
async def test_from_the_hand_over_on_it_is_too_late_and_nothing_is_cancelled(step: str) -> None:
    state = Abort()
    with pytest.raises(ApiError) as refused:
        await abort(state, step, "echo:alice", "b", "a")
    assert refused.value.status == 409
    assert "Too late to abort the move of echo:alice" in refused.value.message
    assert "ten move echo:alice --to a" in refused.value.message
    assert not state.scope.cancel_called and state.at is None


async def test_an_abort_cancels_the_steps_and_answers_once_the_tenant_is_back() -> None:
    state = Abort()
    answers: list[dict[str, object]] = []

    async def move() -> None:
        with state.scope:
            await trio.sleep_forever()  # the data on its way
        state.back.set()  # as the move's failure path, once it started here again

    async def call() -> None:
        answers.append(await abort(state, "sending", "echo:alice", "b", "a"))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(move)
            nursery.start_soon(call)
    assert answers == [
        {
            "id": "echo:alice",
            "aborted": True,
            "step": "sending",
            "to": "b",
            "runs_on": "a",
            "back": True,
        }
    ]
    error = state.aborted_error("echo:alice", "b", "a")
    assert error.status == 409 and "while sending its data: nothing was moved" in error.message
