"""Typed arrays saved as raw bytes: how the long parts of a profile's state are kept.

A shared (Redis) profile is decoded and encoded on every event, and a busy terminal's windows
and sketches hold thousands of numbers; as msgpack lists each number costs a step both ways,
as packed bytes the whole column is one copy. Bytes are little-endian whatever the machine,
so a profile saved on one machine reads the same on any other.

>>> from array import array
>>> unpack("q", pack(array("q", [3, -1]))).tolist()
[3, -1]
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable


def pack(column: array) -> bytes:
    if sys.byteorder == "big":
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def unpack(typecode: str, saved: bytes | Iterable[int | float]) -> array:
    """The column saved by :func:`pack` (or, from a state saved before packing, a list)."""
    column = array(typecode)
    if isinstance(saved, bytes):
        column.frombytes(saved)
        if sys.byteorder == "big":
            column.byteswap()
    else:
        column.extend(saved)
    return column
