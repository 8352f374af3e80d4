"""Helper processes (the recorder's writer, ``serve --workers`` processes) die with the server.

A ``kill -9`` of the server gives it no chance to stop them, and a writer left running keeps
the store open (and would hold SQLite's write lock against the restarted server). Each helper
watches the process that started it and exits as soon as it is gone.

>>> watch(os.getpid(), interval=0.05).is_alive()  # our own process is alive: keeps watching
True
"""

from __future__ import annotations

import os
import threading
import time


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped, does not).

    >>> alive(os.getpid()), alive(2**22 + 1)
    (True, False)
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # pid (name) STATE ...: the name may hold spaces and parentheses, the state follows
            # the last ')'.
            return stat.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel (a zombie then counts as alive)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def watch(pid: int, *, interval: float = 0.5) -> threading.Thread:
    """Exit this process at once (no cleanup: its parent is gone) when ``pid`` stops."""

    def run() -> None:
        while alive(pid):
            time.sleep(interval)
        os._exit(70)

    thread = threading.Thread(target=run, name="vigil-lifeline", daemon=True)
    thread.start()
    return thread
