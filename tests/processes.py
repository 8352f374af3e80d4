"""Processes a test started, and whether they are gone (from /proc)."""

from __future__ import annotations

import time
from pathlib import Path

from vigil.api.lifeline import alive


def descendants(pid: int) -> set[int]:
    """Every process started by ``pid``, at any depth."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            parent = int(stat.rpartition(b")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def survivors(pids: set[int], *, within: float = 10.0) -> list[int]:
    """Those of ``pids`` still running after waiting up to ``within`` seconds for them."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]
