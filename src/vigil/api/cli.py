"""``vigil serve`` and ``vigil keys create|list|revoke``.

>>> from typer.testing import CliRunner
>>> "revoke" in CliRunner().invoke(keys_app, ["--help"]).output
True
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli_common import DatabaseOpt
from vigil.cli_common import settings as _settings

console = Console()
err = Console(stderr=True)

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (api.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (api.port)")] = None,
    database: DatabaseOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Serve decisions over HTTP (one process: the engine's profiles live in it)."""
    import uvicorn

    from vigil.api import create_app

    settings = _settings(database, host=host, port=port)
    app = create_app(settings, tune_gc=True)
    err.print(
        f"vigil serving on http://{settings.api.host}:{settings.api.port} "
        f"(OpenAPI at /docs); Ctrl-C stops and saves profiles"
    )
    # No access log: one log line per decision would cost more than the decision.
    uvicorn.run(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=log_level,
        access_log=False,
    )


def _ring(database: str | None):
    from vigil.api.keys import KeyRing
    from vigil.cli_common import store

    return KeyRing(store(_settings(database)))


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    role: Annotated[list[str], typer.Option(help="ingest, analyst or admin; repeatable")],
    database: DatabaseOpt = None,
) -> None:
    """Create a key and print it, this once: only its argon2 hash is stored."""
    ring = _ring(database)
    try:
        key, info = ring.create(name, role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    err.print(f"key {info.key_id} ({', '.join(info.roles)}) for {info.name}; store it now:")
    print(key)


@keys_app.command("list")
def list_keys(database: DatabaseOpt = None) -> None:
    """Every key: id, name, roles, created, revoked."""
    table = Table("key id", "name", "roles", "created", "revoked")
    for k in _ring(database).list():
        table.add_row(
            k.key_id,
            k.name,
            ",".join(k.roles),
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the part after vgl_)")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke a key (servers stop accepting it within api.key_cache_seconds)."""
    if not _ring(database).revoke(key_id):
        err.print(f"[red]no active key {key_id!r}[/]")
        raise typer.Exit(code=1)
    err.print(f"revoked {key_id}")
