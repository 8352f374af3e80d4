"""Store is composed of parts (vigil.storage.events, .decisions...): the composition must not
change what a caller of Store gets."""

from __future__ import annotations

from collections import Counter

from vigil.storage import Store
from vigil.storage.database import Database


def test_no_two_parts_define_the_same_name() -> None:
    # Were one name in two parts, the order of Store's bases would silently pick one of them.
    parts = [c for c in Store.__mro__ if issubclass(c, Database) and c is not Store]
    names = Counter(name for part in parts for name in vars(part) if not name.startswith("__"))
    assert [name for name, n in names.items() if n > 1] == []


def test_every_part_is_built_on_the_one_database() -> None:
    assert all(issubclass(base, Database) for base in Store.__bases__)
    assert Store.__mro__[-2] is Database
