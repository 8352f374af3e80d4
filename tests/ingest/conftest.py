"""A SQLite store in tmp_path for the importer tests (the shared ``store`` fixture covers both
backends where a test needs PostgreSQL too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.storage import Store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    store.init_schema()
    yield store
    store.close()
