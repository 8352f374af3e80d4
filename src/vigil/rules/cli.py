"""``vigil rules check|list|reload|history|fields`` and ``vigil backtest``.

Every command ends with one JSON line of figures, like the rest of ``vigil``.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli_common import DatabaseOpt, unreadable
from vigil.cli_common import emit as _emit
from vigil.cli_common import settings as _settings
from vigil.cli_common import store as _store
from vigil.cli_inputs import EventInput, event_options
from vigil.config import Settings

if TYPE_CHECKING:
    from vigil.rules.loader import Rule

# The default rule file's place, without importing the rule compiler for `vigil --help`.
DEFAULT_RULES = Path(__file__).with_name("default.yaml")

app = typer.Typer(help="Rule files: check, list, reload, history.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _compile(path: Path) -> tuple[str, list[Rule]]:
    """The file's rules, or every error printed and exit code 1; a path that is no file is a
    mistake in the command, answered on one line with exit code 2 (vigil.cli_common)."""
    from vigil.rules.live import compile_file
    from vigil.rules.loader import RuleFileError, known_reason_codes

    if not path.is_file():
        raise unreadable(path, FileNotFoundError(path))
    try:
        return compile_file(path, known_reason_codes())
    except RuleFileError as exc:
        err.print(f"[red]{exc.source}: {len(exc.problems)} error(s)[/]")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False, highlight=False)
        _emit({"file": str(path), "ok": False, "errors": [str(p) for p in exc.problems]})
        raise typer.Exit(code=1) from None


def _rules_table(rules: list[Rule], title: str) -> Table:
    table = Table("rule", "line", "state", "effect", "condition", title=title)
    for r in rules:
        state = "disabled" if not r.enabled else ("shadow" if r.shadow else "live")
        effect = ", ".join(
            x for x in (f"score {r.score:g}" if r.score else "", r.action and r.action.value) if x
        )
        table.add_row(r.name, str(r.line or ""), state, effect, r.condition)
    return table


def _counts(rules: list[Rule]) -> dict[str, int]:
    from vigil.rules.live import rule_counts

    return rule_counts(rules)


@app.command("check")
def check(file: Annotated[Path, typer.Argument(help="Rule file (YAML)")]) -> None:
    """Validate a rule file: every error (rule, line, field), exit 1 when there is any."""
    _, rules = _compile(file)
    console.print(_rules_table(rules, f"{file}: ok"))
    _emit({"file": str(file), "ok": True, **_counts(rules)})


@app.command("list")
def list_rules(database: DatabaseOpt = None) -> None:
    """The rules in force: which file, which version, and each rule."""
    from vigil.rules.live import rules_path, sha256_text

    settings = _settings(database)
    path = rules_path(settings.rules)
    text, rules = _compile(path)
    sha = sha256_text(text)
    versions = _store(settings).rule_versions(limit=1)
    latest = versions[0] if versions else None
    version = latest["version"] if latest and latest["sha256"] == sha else None
    default = " (the packaged default: copy it and set rules.path to edit)"
    # Never wrapped: a path split across lines cannot be copied.
    console.print(
        f"file: [bold]{path}[/]{default if path == DEFAULT_RULES else ''}", soft_wrap=True
    )
    if not settings.rules.enabled:
        console.print("[yellow]rules are switched off (rules.enabled = false)[/]")
    if version is not None:
        console.print(
            f"version {version}, activated {latest['activated_at']} by {latest['source']}"
        )
    elif latest is not None:
        console.print(
            f"[yellow]the file differs from version {latest['version']}, the last activated;"
            " engines pick it up within rules.poll_seconds, or run `vigil rules reload`[/]"
        )
    console.print(_rules_table(rules, "rules"))
    _emit(
        {
            "file": str(path),
            "version": version,
            "sha256": sha,
            "enabled": settings.rules.enabled,
            **_counts(rules),
        }
    )


@app.command("reload")
def reload(
    file: Annotated[
        Path | None, typer.Argument(help="New rule file to put in place of the configured one")
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Validate and put rules in force; a broken file changes nothing (exit 1).

    With FILE, its content replaces the configured rule file (atomically: running engines see
    the old file or the new, never half of one) and they pick it up within poll_seconds.
    """
    from vigil.rules.live import PackagedRulesError, install, rules_path

    settings = _settings(database)
    target = rules_path(settings.rules)
    text, rules = _compile(file or target)
    who = f"cli {getpass.getuser()}@{socket.gethostname()}"
    try:
        version, new = install(target, text, store=_store(settings), source=who)
    except PackagedRulesError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from None
    state = "now in force" if new else "already in force"
    console.print(f"{target}: {len(rules)} rules, version {version} {state}")
    _emit({"file": str(target), "version": version, "new": new, **_counts(rules)})


@app.command("history")
def history(
    limit: Annotated[int, typer.Option(help="How many versions")] = 20,
    database: DatabaseOpt = None,
) -> None:
    """Rule versions put in force, newest first."""
    versions = _store(_settings(database)).rule_versions(limit=limit)
    table = Table("version", "activated", "by", "sha256", "path")
    for v in versions:
        table.add_row(
            str(v["version"]), str(v["activated_at"]), v["source"], v["sha256"][:12], v["path"]
        )
    console.print(table)
    _emit({"versions": [{k: v[k] for k in v if k != "content"} for v in versions]})


@app.command("fields")
def fields(
    prefix: Annotated[str, typer.Argument(help="Only fields starting with this")] = "",
) -> None:
    """The fields a condition may read, with their types."""
    from vigil.rules.fields import FIELDS

    table = Table("field", "type", "meaning")
    shown = [f for name, f in FIELDS.items() if name.startswith(prefix)]
    for f in shown:
        values = f" ({', '.join(f.values)})" if f.values else ""
        table.add_row(f.name, f.type, f.doc + values)
    console.print(table)
    _emit({"fields": len(shown)})


@event_options()
def backtest(
    rules: Annotated[Path, typer.Argument(help="Candidate rule file (YAML)")],
    events: Annotated[Path, typer.Option(help="Event file (Parquet or CSV)")],
    inputs: EventInput,
    labels: Annotated[
        Path | None,
        typer.Option(help="labels.csv (event_id,transaction_id,pattern), or --label-column"),
    ] = None,
    bank: Annotated[Path | None, typer.Option(help="Bank folder with the reference data")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Replay history with the candidate rules beside those in force; compare per rule.

    Nothing live is written: an in-memory engine and profiles. Reference data comes from
    --bank, else (read only) from the database.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vigil.domain import Feedback
    from vigil.features.io import read_labels
    from vigil.rules.backtest import reference_from_folder, run_backtest
    from vigil.rules.book import RuleBook
    from vigil.rules.live import rules_path

    if labels is None and inputs.label_column is None:
        raise typer.BadParameter("give --labels or --label-column: a backtest counts frauds")
    settings = _settings(database)
    _, candidate = _compile(rules)
    current_path = rules_path(settings.rules)
    current = (
        RuleBook(_compile(current_path)[1], source=str(current_path))
        if settings.rules.enabled
        else RuleBook()
    )
    reference = reference_from_folder(bank) if bank is not None else _database_reference(settings)
    # Fraud labels from the labels file, else from the event file's label column.
    label_frame = read_labels(labels) if labels is not None else inputs.frame(events)[1]
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("backtesting", total=None)
        result = run_backtest(
            (e for e in inputs.events(events) if not isinstance(e, Feedback)),
            label_frame,
            current,
            RuleBook(candidate, source=str(rules)),
            reference=reference,
            settings=settings,
            on_progress=lambda n: progress.advance(task, n),
        )
    _print_backtest(result.as_dict(), current_path, rules)
    _emit(result.as_dict())


def _database_reference(settings: Settings) -> Any:
    from vigil.storage import Store
    from vigil.storage.reference import ReferenceData

    try:
        return Store(settings.database_url).load_reference()
    except Exception as exc:  # a missing database is no reason to refuse a backtest
        err.print(
            f"[yellow]no reference data from the database ({type(exc).__name__}); "
            "cards and terminals are unknown (give --bank)[/]"
        )
        return ReferenceData()


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _print_backtest(figures: dict[str, Any], current: Path, candidate: Path) -> None:
    table = Table(title=f"backtest: {candidate} beside {current}")
    table.add_column("rule", no_wrap=True)
    for column in ("in", "state", "hits", "precision", "recall", "adds", "removes"):
        table.add_column(column)
    for name, r in figures["rules"].items():
        table.add_row(
            name,
            r["book"],
            "shadow" if r["shadow"] else "live",
            f"{r['hits']:,}",
            _ratio(r["precision"]),
            _ratio(r["recall"]),
            f"{r['adds']:,}",
            f"{r['removes']:,}",
        )
    console.print(table)
    for which in ("current", "candidate"):
        o = figures[which]
        console.print(
            f"{which}: {o['alerts']:,} alerts, precision {_ratio(o['precision'])}, "
            f"recall {_ratio(o['recall'])} of {figures['fraud_units']:,} fraud units"
        )
    console.print(
        f"candidate adds {figures['alerts_added']:,} alerts and removes "
        f"{figures['alerts_removed']:,} over {figures['units']:,} units"
    )
