"""Requests for a tenant being moved to another fleet node are held, not refused.

While ``ten move`` stops a tenant here, sends its data to the new node and hands it over
(``tenement/server/moves.py``), its requests wait here, as they wait for a wake; then
they go to the new node. A request another node forwarded here (a hop) is forwarded once
more, to the node the tenant moved to: the one exception to "one hop at most", bounded
(the new owner serves it itself or answers 508) and kept for :data:`MOVED_HOP_SECONDS`,
until every node's map knows the new owner.

A tenant that keeps no data moves without a hold: its old node serves it from its own
process until the new copy runs (``Mover._move_alongside``), and the new node sends its
own clients' requests for it to the old one meanwhile (:meth:`Moves.arriving_from`;
never a forwarded request: the old node serves that one itself, or forwards it back
once at most, as above).
"""

from __future__ import annotations

import trio

#: how long after a move a forwarded request for the tenant may be forwarded again to
#: where it went (the other nodes' maps are read again every 0.5 s)
MOVED_HOP_SECONDS = 30.0


class Moves:
    """The tenants being moved away from this node, and those just moved."""

    def __init__(self) -> None:
        self._holding: dict[str, trio.Event] = {}
        self._moved: dict[str, float] = {}
        #: the requests held for each tenant being moved, told when its move ends
        self._held: dict[str, int] = {}
        #: tenants handed to this node by a stateless move, whose old node serves them
        #: until they run here: instance id -> (that node, until when)
        self._arriving: dict[str, tuple[str, float]] = {}

    def moving(self, instance_id: str) -> bool:
        return instance_id in self._holding

    def begin(self, instance_id: str) -> None:
        """Hold the requests for ``instance_id`` from now on."""
        self._holding.setdefault(instance_id, trio.Event())

    def end(self, instance_id: str, *, moved: bool) -> int:
        """Let the held requests go on (to the new node when ``moved``); how many
        requests were held (the move's log says: a stateless move holds none)."""
        if moved:
            self._moved[instance_id] = trio.current_time()
        released = self._holding.pop(instance_id, None)
        if released is not None:
            released.set()
        return self._held.pop(instance_id, 0)

    async def hold(self, instance_id: str, timeout: float) -> bool:
        """Wait while ``instance_id`` is being moved, at most ``timeout`` seconds.

        Returns:
            False if it was still moving when the time ran out (the caller answers 503),
            True otherwise.
        """
        event = self._holding.get(instance_id)
        if event is None:
            return True
        self._held[instance_id] = self._held.get(instance_id, 0) + 1
        with trio.move_on_after(timeout):
            await event.wait()
            return True
        return False

    def moved_recently(self, instance_id: str) -> bool:
        """Whether ``instance_id`` left this node within :data:`MOVED_HOP_SECONDS`."""
        at = self._moved.get(instance_id)
        if at is None:
            return False
        if trio.current_time() - at > MOVED_HOP_SECONDS:
            del self._moved[instance_id]
            return False
        return True

    def arrive(self, instance_id: str, source: str, seconds: float) -> None:
        """``instance_id`` was handed here by ``source``, which serves it until it runs
        here (at most ``seconds``): this node's own requests for it go there."""
        self._arriving[instance_id] = (source, trio.current_time() + seconds)

    def arriving_from(self, instance_id: str) -> str | None:
        """The node that still serves ``instance_id`` while it starts here, or None.
        Asked only while it does not run here (once it does, it is served here)."""
        found = self._arriving.get(instance_id)
        if found is None:
            return None
        if trio.current_time() > found[1]:
            del self._arriving[instance_id]
            return None
        return found[0]
