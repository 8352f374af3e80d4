"""``vigil query``: a named question or raw SQL over the stored profiles, as a table or JSON."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vigil.query.frame import genome_frame, profiles_frame
from vigil.query.named import NAMED, run_named, run_sql

console = Console()


def _param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"--param: expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def query(
    name: Annotated[str | None, typer.Argument(help="A named query (see --list)")] = None,
    sql: Annotated[str | None, typer.Option("--sql", help="SQL over the table profiles")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE")] = None,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Move windows to this time (UTC)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries")] = False,
    database: Annotated[str | None, typer.Option("--database", "-d")] = None,
) -> None:
    """Ask the stored profiles a question: a named query, or --sql over the tables ``profiles``
    and ``genome`` (account × counterparty country × direction)."""
    from vigil.cli import _settings, _store

    if list_:
        for key, q in NAMED.items():
            defaults = ", ".join(f"{k}={v}" for k, v in q.params.items())
            console.print(f"[bold]{key}[/bold] ({defaults})\n  {q.description}")
        return
    if (name is None) == (sql is None):
        raise typer.BadParameter("give a named query or --sql (not both)")
    store = _store(_settings(database))
    when = as_of.timestamp() if as_of is not None else None
    rows = list(store.load_profiles())
    frame = profiles_frame(rows, as_of=when)
    if frame.is_empty():
        typer.echo("error: no stored profiles: run vigil replay first", err=True)
        raise typer.Exit(1)
    params = dict(_param(p) for p in param or [])
    try:
        genome = genome_frame(rows)
        if name:
            result = run_named(name, frame, params, genome=genome)
        else:
            result = run_sql(sql or "", frame, params, genome=genome)
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc.args[0] if exc.args else exc)) from exc
    if as_json:
        print(json.dumps(result.to_dicts(), default=str))
        return
    table = Table(*result.columns, title=name or "sql")
    for row in result.iter_rows():
        table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
