"""Init (pid 1) of a tenant's PID namespace; run as a script, never imported by tenement.

``unshare --pid --fork --mount --mount-proc`` makes this script pid 1 of a fresh
PID namespace with its own /proc. It starts the tenant command as pid 2, reaps
every orphan the tenant leaves behind, and exits with the tenant's status (128+N
when a signal N killed it). When pid 1 exits, the kernel kills everything left
in the namespace.

Why not exec the tenant as pid 1: the kernel drops signals sent to a namespace's
init for which it has no handler, so an app without a SIGTERM handler would ignore
``stop``'s SIGTERM. Here, pid 1 ignores the group's SIGTERM (it has no handler),
the tenant receives it as usual (it is in the same process group), and pid 1
follows it out.

It runs with ``python -I -S``: standard library only, nothing from tenement.
"""

import os
import signal
import sys

#: exit status when the command cannot be started (as a shell's "command not found")
EXIT_NOT_STARTED = 127
#: signals Python sets to "ignore" at startup; the tenant gets their defaults back
RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)


def main(argv: list[str]) -> int:
    """Start ``argv``, reap until it exits, return its exit status."""
    # pid 1 with the default disposition: the kernel discards SIGINT for us.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        child = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=RESTORED_SIGNALS)
    except OSError as exc:
        sys.stderr.write(f"tenement: cannot start {argv[0]!r}: {exc.strerror}\n")
        return EXIT_NOT_STARTED
    while True:
        pid, status = os.wait()
        if pid != child:
            continue  # an orphan reparented to us: reaped, nothing more
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
