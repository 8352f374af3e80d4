"""What every ``vigil`` command shares: the ``--database`` option, settings, the store, the
JSON last line, and the error boundary (``--debug``, ``--version``).

Kept apart from :mod:`vigil.cli` so the sub-commands (rules, keys and serve, privacy) use the
same helpers without importing the whole command tree, and light: the store is imported only
when a command opens one, so ``vigil --help`` stays fast.

>>> settings("sqlite:///x.db").database_url
'sqlite:///x.db'
>>> settings(None, port=9000).api.port
9000
>>> emit({"rules": 3})
{"rules": 3}
>>> error_line(FileNotFoundError(2, "No such file or directory", "tx.csv"))
'error: tx.csv: No such file or directory'
>>> error_line(KeyError(2))
'error: KeyError: 2 (run with --debug for the traceback)'
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

import vigil
from vigil.config import Settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn

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


@contextmanager
def progress_display(*columns: str | ProgressColumn, console: Console) -> Iterator[Progress]:
    """A rich progress display that a failure clears: the error's one line stands alone (no
    bar, nor the blank line rich writes after one)."""
    from rich.progress import Progress

    display = Progress(*columns, console=console, transient=False)
    display.start()
    try:
        yield display
    except Exception:
        display.live.transient = True
        display.live.stop()
        raise
    finally:
        if display.live.is_started:
            display.stop()


def unreadable(path: Path, exc: BaseException) -> Exception:
    """The importers' ``SourceFileError`` for a file polars could not read: missing, not a
    file, or not what its suffix says."""
    from vigil.ingest import SourceFileError

    if not path.exists():
        return SourceFileError(path, "no such file")
    if not path.is_file():
        return SourceFileError(path, "not a file")
    kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
    return SourceFileError(path, f"not a readable {kind} file ({_first_line(exc)})")


# Exit codes, by convention: 2 for usage and input errors (what the user can fix in the command
# or its files), 1 for failures.
INPUT_ERROR = 2
FAILURE = 1
_LONGEST = 500  # characters of a message shown; a garbage header must not flood the terminal


def exit_code(exc: BaseException) -> int:
    """2 when ``exc`` says the input is wrong (a missing file, a wrong format, bad SQL, a bad
    database URL), else 1.

    Libraries are checked only when loaded: an error of theirs means they were.

    >>> exit_code(ValueError("amount: not a number")), exit_code(RuntimeError("disk"))
    (2, 1)
    """
    from vigil.ingest.errors import IngestError

    input_errors: list[type[BaseException]] = [
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        ValueError,  # parsing and validation, pydantic's ValidationError among them
        IngestError,
    ]
    if polars := sys.modules.get("polars"):
        input_errors.append(polars.exceptions.PolarsError)
    if duckdb := sys.modules.get("duckdb"):
        if isinstance(exc, duckdb.InternalError):
            return FAILURE
        input_errors.append(duckdb.Error)  # the SQL of vigil query --sql
    if sqlalchemy_exc := sys.modules.get("sqlalchemy.exc"):
        input_errors.append(sqlalchemy_exc.ArgumentError)  # a --database that is no URL
    return INPUT_ERROR if isinstance(exc, tuple(input_errors)) else FAILURE


def error_line(exc: BaseException) -> str:
    """One line that says what is wrong, naming the file, line, field or column it knows.

    >>> error_line(ValueError("Parser Error: syntax error at or near 'selec'\\nLINE 1: selec"))
    "error: Parser Error: syntax error at or near 'selec'"
    """
    from vigil.ingest import ImportRejected

    declared = sys.modules.get("vigil.features.declared")  # loaded if its error is raised
    if isinstance(exc, ImportRejected) and exc.errors:
        # Its message lists every bad row, one a line: the first says what to fix.
        more = len(exc.errors) - 1
        text = str(exc.errors[0]) + (f" (and {more} more error(s))" if more else "")
    elif declared and isinstance(exc, declared.FeatureFileError) and exc.mistakes:
        # As a rejected import: every mistake of the feature file, one a line; the first.
        more = len(exc.mistakes) - 1
        first = _first_line(ValueError(exc.mistakes[0]))
        text = f"{exc.source}: {first}" + (f" (and {more} more mistake(s))" if more else "")
    elif isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = _first_line(exc)
    if exit_code(exc) == FAILURE:
        return f"error: {type(exc).__name__}: {text} (run with --debug for the traceback)"
    return f"error: {text or type(exc).__name__}"


def _first_line(exc: BaseException) -> str:
    """The first non-blank line of the message, printable and cut short."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line if len(line) <= _LONGEST else f"{line[:_LONGEST]}..."


class ErrorBoundary(TyperGroup):
    """The root ``vigil`` group: any error a command lets through is answered with one line on
    stderr and an exit code (:func:`exit_code`), or with its traceback under ``--debug``.

    Here rather than around ``app()``, so the console script and ``CliRunner`` behave alike.
    Typer's own exits and usage errors (``typer.Exit``, ``BadParameter``) pass untouched.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                typer.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
            typer.echo(error_line(exc), err=True)
            raise typer.Exit(exit_code(exc)) from exc


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {vigil.__version__}")
        raise typer.Exit()


# The commands that take in personal data (IPs, devices, card numbers, contact data): with the
# published development keys their pseudonyms are reversible and their "encryption" is not.
PERSONAL_DATA_COMMANDS = frozenset({"serve", "consume", "import", "replay"})


def root_options(
    ctx: typer.Context,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="A development setup: allow the published development privacy keys (VIGIL_DEV=1)",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the full traceback")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """The options of ``vigil`` itself, before the command (read by :class:`ErrorBoundary`).

    ``--dev`` goes into the environment (``VIGIL_DEV=1``), so the settings of this command and
    of the processes it starts (server workers, the writer) all see it. A command that takes in
    personal data is refused here when the privacy keys are the development ones and this is
    not a development setup.
    """
    if dev:
        os.environ["VIGIL_DEV"] = "1"
    if ctx.invoked_subcommand in PERSONAL_DATA_COMMANDS:
        from vigil.privacy.keys import refuse_development_keys

        refuse_development_keys(Settings(), f"vigil {ctx.invoked_subcommand}")
