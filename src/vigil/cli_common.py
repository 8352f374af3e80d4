"""What every ``vigil`` command shares: the ``--database`` option, settings, the store, the
JSON last line.

Kept apart from :mod:`vigil.cli` so the sub-commands (rules, keys and serve, privacy) use the
same helpers without importing the whole command tree, and light: the store is imported only
when a command opens one, so ``vigil --help`` stays fast.

>>> settings("sqlite:///x.db").database_url
'sqlite:///x.db'
>>> settings(None, port=9000).api.port
9000
>>> emit({"rules": 3})
{"rules": 3}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigil.config import Settings

if TYPE_CHECKING:
    from vigil.storage import Store

DatabaseOpt = Annotated[
    str | None, typer.Option("--database", "-d", help="Database URL (default: VIGIL_DATABASE_URL)")
]


def settings(database: str | None, **api: object) -> Settings:
    """The settings in force, with ``--database`` and any given ``[api]`` options over them."""
    out = Settings(database_url=database) if database else Settings()
    changes = {k: v for k, v in api.items() if v is not None}
    if changes:
        out = out.model_copy(update={"api": out.api.model_copy(update=changes)})
    return out


def store(settings: Settings) -> Store:
    """The configured store, with its privacy keys, schema created if missing."""
    from vigil.privacy import PrivacyKeys
    from vigil.storage import Store

    out = Store(settings.database_url, privacy=PrivacyKeys.from_settings(settings))
    out.init_schema()
    return out


def emit(figures: dict[str, Any]) -> None:
    """The machine-readable last line of every command that produces figures."""
    print(json.dumps(figures, default=str))
