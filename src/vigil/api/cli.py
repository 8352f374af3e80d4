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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes on the one port; more than one needs shared profiles "
            "(profiles_url: Redis) and PostgreSQL",
        ),
    ] = 1,
    log_level: Annotated[
        str,
        typer.Option(
            help="Log level of vigil and uvicorn: critical, error, warning, info, debug (a line "
            "per decision), trace; JSON lines unless stderr is a terminal (docs/operations.md)"
        ),
    ] = "warning",
) -> None:
    """Serve decisions over HTTP (by default one process, the profiles living in it)."""
    import os

    import uvicorn

    from vigil import logs
    from vigil.api.app import SETTINGS_ENV, create_app

    try:
        logs.configure(log_level)  # left in logs.ENV for the worker and writer processes
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from None
    settings = _settings(database, host=host, port=port)
    if workers > 1:
        _check_shareable(settings)
    err.print(
        f"vigil serving on http://{settings.api.host}:{settings.api.port} "
        f"({workers} process{'es' if workers > 1 else ''}; OpenAPI at /docs, "
        "the analyst workbench at /); Ctrl-C stops and saves profiles"
    )
    # No access log: one log line per decision would cost more than the decision. No log
    # configuration of uvicorn's own: its records go to the root logger, so through vigil.logs.
    options = {
        "host": settings.api.host,
        "port": settings.api.port,
        "log_level": log_level.lower(),
        "log_config": None,
        "access_log": False,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, tune_gc=True), **options)
        return
    import tempfile

    # Each worker process builds its app from these settings, and counts its metrics in files
    # of this folder, which /metrics sums over the workers.
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    with tempfile.TemporaryDirectory(prefix="vigil-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        uvicorn.run("vigil.api.app:worker_app", factory=True, workers=workers, **options)


def _check_shareable(settings) -> None:
    """Worker processes share nothing but the database and the profile store."""
    if not (settings.profiles_url or "").startswith(("redis://", "rediss://", "unix://")):
        raise typer.BadParameter(
            "more than one process needs shared profiles: set profiles_url "
            "(VIGIL_PROFILES_URL=redis://...); in-process profiles belong to one process",
            param_hint="--workers",
        )
    if settings.database_url.startswith("sqlite"):
        raise typer.BadParameter(
            "more than one process needs PostgreSQL (VIGIL_DATABASE_URL=postgresql://...): "
            "SQLite takes one writer at a time",
            param_hint="--workers",
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
