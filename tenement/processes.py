"""Whether a process exists, for the files that name one by its pid (lease holders,
control sockets). Nothing here starts or signals a process."""

from __future__ import annotations

import os


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine, ours or another user's.

    Signal 0 is a probe: ``EPERM`` means the process is there but not ours to signal.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
