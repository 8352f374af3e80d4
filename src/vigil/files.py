"""Files written whole or not at all, with the permissions any other file of the user gets.

A file is written to a temporary file in its folder and renamed over the target, so a reader
sees the old file or the new one, never half of one. ``tempfile.mkstemp`` creates its file
readable by its owner only (0600), and a rename keeps that, so a report or a rule file written
this way was unreadable to the web server or the colleague it was written for; the temporary
file here gets the mode an ordinary ``open()`` would give (0666 less the umask).

>>> import tempfile, pathlib, stat
>>> target = pathlib.Path(tempfile.mkdtemp()) / "report.html"
>>> replace_file(target, "<html></html>")
>>> target.read_text(), stat.S_IMODE(target.stat().st_mode) == default_mode()
('<html></html>', True)
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def default_mode() -> int:
    """The mode ``open()`` gives a new file now: 0666 less the process's umask."""
    with _UMASK_LOCK:  # reading the umask means setting it: no other thread reads meanwhile
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def staged(target: Path) -> tuple[int, str]:
    """An open descriptor and the path of a new temporary file beside ``target``, with the
    ordinary mode; rename it over ``target`` once written (``os.replace``)."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.fchmod(fd, default_mode())
    return fd, temporary


def replace_file(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file renamed over it (atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = staged(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
