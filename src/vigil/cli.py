"""The ``vigil`` command: one verb per job, figures as tables, and a JSON line at the end.

Every command that produces figures prints, as its last line, one JSON object with them.
"""

from __future__ import annotations

import shutil
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigil.cli_common import (
    DatabaseOpt,
    ErrorBoundary,
    progress_display,
    root_options,
    unreadable,
)
from vigil.cli_common import emit as _emit
from vigil.cli_common import settings as _settings
from vigil.cli_common import store as _store
from vigil.cli_inputs import EventInput, event_options
from vigil.config import Settings
from vigil.rules import cli as rules_cli

app = typer.Typer(
    help="vigil: behavioural profiling and real-time fraud decisions.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=ErrorBoundary,  # an error is one line and an exit code; --debug shows the traceback
)
app.callback()(root_options)
db_app = typer.Typer(help="The database: create or migrate the schema.", no_args_is_help=True)
import_app = typer.Typer(help="Import reference data and event files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(rules_cli.app, name="rules")
app.command(name="backtest")(rules_cli.backtest)

from vigil.api.cli import keys_app, serve  # noqa: E402  (the service's commands live with it)

app.command(name="serve")(serve)
app.add_typer(keys_app, name="keys")

from vigil.features.cli import app as features_app  # noqa: E402

app.add_typer(features_app, name="features")

console = Console()
err = Console(stderr=True)

OnErrorOpt = Annotated[
    str, typer.Option("--on-error", help="reject: refuse the whole file; skip: write a reject file")
]


def _progress() -> AbstractContextManager[Progress]:
    return progress_display(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


@db_app.command("init")
def db_init(database: DatabaseOpt = None) -> None:
    """Create the schema (idempotent: running it twice changes nothing)."""
    settings = _settings(database)
    store = _store(settings)
    console.print(f"schema ready on [bold]{store.dialect}[/] ({_safe_url(settings.database_url)})")


@db_app.command("upgrade")
def db_upgrade(
    database: DatabaseOpt = None,
    to: Annotated[
        str, typer.Option("--to", help="Revision to stop at (default: this vigil's newest)")
    ] = "head",
) -> None:
    """Bring the schema to this vigil's version, in one transaction. Back the database up first:
    vigil never downgrades a schema."""
    from vigil.privacy import PrivacyKeys
    from vigil.storage import Store
    from vigil.storage.migrations import upgrade

    settings = _settings(database)
    with Store(settings.database_url, privacy=PrivacyKeys.from_settings(settings)) as store:
        done = upgrade(store, to)
    where = f"[bold]{store.dialect}[/] ({_safe_url(settings.database_url)})"
    if done.created:
        console.print(f"schema created at revision {done.after} on {where}")
    elif done.applied:
        console.print(
            f"schema upgraded from revision {done.before or '(none)'} to {done.after} on {where}"
            f" ({', '.join(done.applied)} applied)"
        )
    else:
        console.print(f"schema already at revision {done.after} on {where}")
    _emit({"dialect": store.dialect, **done.as_dict()})


@import_app.command("bank")
def import_bank(
    folder: Annotated[Path, typer.Argument(help="Folder in the ATM bank CSV layout")],
    database: DatabaseOpt = None,
    on_error: OnErrorOpt = "reject",
    reject_dir: Annotated[Path | None, typer.Option(help="Where reject files go")] = None,
) -> None:
    """Import banks, ATMs, cards and users (the CVC column is dropped, never stored)."""
    from vigil.ingest import ImportRejected, load_bank_folder

    store = _store(_settings(database))
    try:
        summary = load_bank_folder(store, folder, on_error=on_error, reject_dir=reject_dir)
    except ImportRejected as exc:
        _rejected(exc)
    _emit(summary.as_dict())


@import_app.command("events")
@event_options()
def import_events(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet event file")],
    inputs: EventInput,
    database: DatabaseOpt = None,
    on_error: OnErrorOpt = "reject",
    reject_dir: Annotated[Path | None, typer.Option(help="Where reject files go")] = None,
) -> None:
    """Store an event file's events (and labels) without deciding on them: the history the
    engine's profiles are rebuilt from (vigil profiles rebuild) and the workbench shows."""
    from vigil.ingest import ImportRejected, load_events

    store = _store(_settings(database))
    try:
        with _progress() as progress:
            task = progress.add_task("importing", total=None)
            summary = load_events(
                store,
                path,
                inputs=inputs,
                on_error=on_error,
                reject_dir=reject_dir,
                on_progress=lambda n: progress.advance(task, n),
            )
    except ImportRejected as exc:
        _rejected(exc)
    _emit(summary.as_dict())


def _rejected(exc: Exception | str) -> None:
    # Plain: each bad row stays on its own line, however long, and a path is not markup.
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@app.command()
@event_options()
def replay(
    path: Annotated[Path, typer.Argument(help="Event file (Parquet or CSV)")],
    inputs: EventInput,
    database: DatabaseOpt = None,
    bank: Annotated[Path | None, typer.Option(help="Import this bank folder first")] = None,
    feedback: Annotated[
        Path | None,
        typer.Option(help="Feedback file (labels, StandIn outcomes) learnt as it arrives"),
    ] = None,
) -> None:
    """Run events through the engine in event-time order, write decisions, and summarise."""
    summary = _replay(_settings(database), path, inputs=inputs, bank=bank, feedback=feedback)
    _print_replay(summary)
    _emit(summary)


def _replay(
    settings: Settings,
    path: Path,
    *,
    inputs: EventInput | None = None,
    bank: Path | None = None,
    feedback: Path | None = None,
) -> dict:
    from vigil.engine import Engine
    from vigil.ingest import load_bank_folder, read_feedback
    from vigil.profiles.holder import refuse_if_held
    from vigil.profiles.recovery import recover
    from vigil.profiles.store import open_profile_store
    from vigil.recorder import Recorder
    from vigil.replay import in_time_order
    from vigil.replay import replay as run

    inputs = inputs or EventInput()
    labels = []
    if feedback is not None:
        read = read_feedback(feedback)
        if not read.ok:
            first = read.errors[0]
            _rejected(f"{len(read.errors)} bad feedback row(s); the first: {first}")
        labels = sorted(read.feedback, key=lambda f: f.timestamp)
    store = _store(settings)
    if bank is not None:
        load_bank_folder(store, bank)
    profiles = open_profile_store(settings)
    if settings.profiles_url is None:
        refuse_if_held(store, "stop it before replaying into its store")
    engine = Engine(store.load_reference(), profiles, Recorder(store), settings=settings)
    # A replay that was interrupted resumes: profiles brought up to what it committed.
    recovery = recover(engine, store)
    total = _count_rows(path)
    with _progress() as progress:
        task = progress.add_task("replaying", total=total)
        summary = run(
            engine,
            in_time_order(inputs.events(path), labels),
            on_progress=lambda n: progress.advance(task, n),
        )
    figures = summary.as_dict()
    figures["profiles"] = len(profiles)
    figures["recovered_events"] = recovery.reapplied
    return figures


def _count_rows(path: Path) -> int | None:
    """The file's rows, for the bar; a file missing or not Parquet is refused here, naming it."""
    import polars as pl

    parquet = path.suffix == ".parquet"
    scan = pl.scan_parquet if parquet else pl.scan_csv
    try:
        return scan(path).select(pl.len()).collect().item()
    except Exception as exc:
        if parquet or not path.is_file():
            raise unreadable(path, exc) from exc
        return None  # the importer reports a bad CSV with its line; a bar can go without


def _print_replay(figures: dict) -> None:
    table = Table(title="replay", show_header=False)
    for key in (
        "events",
        "duplicates",
        "seconds",
        "events_per_second",
        "latency_p50_us",
        "latency_p99_us",
        "profiles",
    ):
        table.add_row(key.replace("_", " "), f"{figures[key]:,}")
    console.print(table)
    breakdown = Table("action", "decisions")
    for action, n in figures["actions"].items():
        breakdown.add_row(action, f"{n:,}")
    console.print(breakdown)
    reasons = Table("reason", "flags")
    for reason, n in figures["flags_by_reason"].items():
        reasons.add_row(reason, f"{n:,}")
    console.print(reasons)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder")] = Path("vigil-bank"),
    seed: Annotated[int, typer.Option(help="Same seed, same bank")] = 7,
    cards: Annotated[int, typer.Option(help="Number of cards (one client each)")] = 2000,
    atms_internal: Annotated[int, typer.Option(help="ATMs owned by the bank")] = 30,
    atms_external: Annotated[int, typer.Option(help="ATMs of other banks")] = 20,
    days: Annotated[int, typer.Option(help="Days of activity")] = 30,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD")] = "2022-01-01",
    fraud_rate: Annotated[float, typer.Option(help="Share of cards with a fraud episode")] = 0.01,
    pattern: Annotated[
        list[str],
        typer.Option(help="PATTERN=WEIGHT: relative share of episodes (0 turns one off)"),
    ] = [],  # noqa: B006
    bank_code: Annotated[str, typer.Option(help="The bank's code (ids <code>-<i>)")] = "VGB",
    bank_name: Annotated[str, typer.Option(help="The bank's name")] = "Vigil Bank",
    hq: Annotated[tuple[float, float], typer.Option(help="Headquarters latitude and longitude")] = (
        6.4541,
        3.3947,
    ),
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or atm-csv")] = "parquet",
) -> None:
    """Generate a synthetic bank with labelled fraud (reference data, events, labels)."""
    summary = _generate(
        out,
        seed=seed,
        cards=cards,
        atms_internal=atms_internal,
        atms_external=atms_external,
        days=days,
        start=start,
        fraud_rate=fraud_rate,
        pattern_weights=_pattern_weights(pattern),
        bank_code=bank_code,
        bank_name=bank_name,
        hq_latitude=hq[0],
        hq_longitude=hq[1],
        fmt=fmt,
    )
    _emit(summary)


def _pattern_weights(pairs: list[str]) -> dict[str, float]:
    """Every pattern at weight 1, but for those given as PATTERN=WEIGHT (checked by BankConfig)."""
    from vigil.simulate import PATTERNS

    weights = dict.fromkeys(PATTERNS, 1.0)
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"--pattern {pair!r}: expected PATTERN=WEIGHT, e.g. money_mule=2"
            ) from None
    return weights


def _generate(out: Path, **params) -> dict:
    from datetime import date

    from vigil.simulate import FORMATS, BankConfig
    from vigil.simulate import generate as run

    fmt = params.pop("fmt", "parquet")
    try:
        params["start"] = date.fromisoformat(str(params["start"]))
    except ValueError:
        raise typer.BadParameter(f"start: expected YYYY-MM-DD (got {params['start']!r})") from None
    if fmt not in FORMATS:
        raise typer.BadParameter(f"format: must be one of {list(FORMATS)} (got {fmt!r})")
    try:
        config = BankConfig(**params).validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with _progress() as progress:
        task = progress.add_task("generating", total=1.0)

        def step(label: str, done: float) -> None:
            progress.update(task, description=label, completed=done)

        summary = run(config, out, fmt=fmt, progress=step)
        progress.update(task, completed=1.0, description="generated")
    return summary.as_dict()


@app.command()
@event_options()
def evaluate(
    inputs: EventInput,
    labels: Annotated[
        Path | None, typer.Option(help="labels.csv from vigil generate (or --label-column)")
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="The replayed event file (for maps, and its labels)")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder")] = Path("vigil-report"),
    database: DatabaseOpt = None,
) -> None:
    """Join decisions with labels; write evaluation.json and an HTML report."""
    figures = _evaluate(_settings(database), labels, events, out, inputs=inputs)
    _emit(figures)


def _evaluate(
    settings: Settings,
    labels: Path | None,
    events: Path | None,
    out: Path,
    *,
    inputs: EventInput | None = None,
) -> dict:
    import polars as pl

    from vigil.evaluate import evaluate as run
    from vigil.evaluate import write_report
    from vigil.features.io import read_labels

    inputs = inputs or EventInput()
    if labels is None and (events is None or inputs.label_column is None):
        raise typer.BadParameter("give --labels, or --events with its --label-column")
    store = _store(settings)
    decisions = store.decision_frame()
    event_frame, label_frame = inputs.frame(events) if events is not None else (None, None)
    if labels is not None:
        label_frame = read_labels(labels)
    reference = store.load_reference()
    terminals = (
        pl.DataFrame(
            [
                t.model_dump(include={"terminal_id", "latitude", "longitude", "city", "internal"})
                for t in reference.terminals.values()
            ]
        )
        if reference.terminals
        else None
    )
    result = run(decisions, label_frame, events=event_frame)
    _, html_path = write_report(result, out, terminals=terminals)
    figures = result.as_dict()
    _print_evaluation(figures)
    console.print(f"report: [bold]{html_path}[/]")
    return figures


def _print_evaluation(figures: dict) -> None:
    table = Table(
        "pattern",
        "units",
        "alerted",
        "recall",
        "+ linked",
        "case recall",
        "episodes caught",
        "median delay (s)",
        title="detection by injected pattern (linked: named as evidence by an alert)",
    )
    for name, row in figures.get("patterns", {}).items():
        table.add_row(
            name,
            f"{row['units']:,}",
            f"{row['alerts']:,}",
            _ratio(row["recall"]),
            f"{row.get('linked', 0):,}",
            _ratio(row.get("case_recall")),
            _ratio(row["episode_recall"]),
            _ratio(row["delay_median_seconds"], ",.0f"),
        )
    console.print(table)
    overall = figures.get("overall", {})
    console.print(
        "overall: "
        + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in overall.items()
        )
    )


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Demo folder: new, empty, or an earlier demo's (replaced)"
        ),
    ] = Path("vigil-demo"),
    cards: Annotated[int, typer.Option(help="Number of cards")] = 2000,
    days: Annotated[int, typer.Option(help="Days of activity")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    fraud_rate: Annotated[
        float, typer.Option(help="Share of cards with a fraud episode (enough to measure recall)")
    ] = 0.03,
) -> None:
    """Generate a small bank, replay it through the engine, evaluate, and write the report."""
    started = time.perf_counter()
    _demo_folder(out)
    data = out / "bank"
    settings = Settings(database_url=f"sqlite:///{out / 'vigil.db'}")
    console.rule("1/3 generate a synthetic bank")
    generated = _generate(
        data,
        seed=seed,
        cards=cards,
        atms_internal=30,
        atms_external=20,
        days=days,
        start="2022-01-01",
        fraud_rate=fraud_rate,
    )
    console.print(f"{generated['transactions']:,} transactions, {generated['logins']:,} logins")
    console.rule("2/3 replay it through the engine")
    replayed = _replay(settings, data / "events.parquet", bank=data, feedback=data / "feedback.csv")
    _print_replay(replayed)
    console.rule("3/3 evaluate against the injected fraud")
    evaluated = _evaluate(settings, data / "labels.csv", data / "events.parquet", out / "report")
    seconds = time.perf_counter() - started
    console.print(
        f"\ndemo done in {seconds:,.0f} s; open [bold]{out / 'report' / 'report.html'}[/]"
    )
    serve = f"VIGIL_DEV=1 vigil serve --database {settings.database_url}"
    workbench = f"http://{settings.api.host}:{settings.api.port}/"
    console.print(
        f"\nthe analyst workbench on the demo's store: run [bold]{serve}[/], open "
        f"[bold]{workbench}[/] and sign in with this analyst key, shown once:\n"
        f"[bold]{_demo_analyst_key(settings)}[/]"
    )
    _emit(
        {
            "seconds": round(seconds, 1),
            "generate": generated,
            "replay": replayed,
            "evaluation": evaluated.get("overall", {}),
            "report": str(out / "report" / "report.html"),
            "workbench": {"serve": serve, "url": workbench},
        }
    )


# Written into every demo folder: only a folder holding it is ever deleted by `vigil demo`.
DEMO_MARK = ".vigil-demo"


def _demo_folder(out: Path) -> None:
    """Make ``out`` an empty demo folder: a new or empty folder is used, an earlier demo's
    (it holds :data:`DEMO_MARK`) is replaced, anything else is refused untouched."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise typer.BadParameter(
            f"{out} exists and is not a folder; nothing deleted", param_hint="--out"
        )
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARK).is_file():
            raise typer.BadParameter(
                f"{out} is not empty and is no earlier demo's folder; choose another or empty it "
                "(nothing deleted)",
                param_hint="--out",
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARK).write_text("made by vigil demo; vigil demo -o here replaces this folder\n")


def _demo_analyst_key(settings: Settings) -> str:
    """A new analyst key on the demo's store, for its workbench (only its hash is stored)."""
    from vigil.api.keys import KeyRing
    from vigil.storage import Store

    with Store(settings.database_url) as store:
        return KeyRing(store).create("demo analyst", ["analyst"])[0]


def _ratio(value: float | None, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register_privacy() -> None:
    # Imported here, after the helpers it uses are defined.
    from vigil.privacy.cli import audit_app, forget_command, privacy_app, purge_command

    app.command(name="forget")(forget_command)
    app.command(name="purge")(purge_command)
    app.add_typer(audit_app, name="audit")
    app.add_typer(privacy_app, name="privacy")


def _register_models() -> None:
    from vigil.models.cli import models_app, score_app, train

    app.command(name="train")(train)
    app.add_typer(score_app, name="score")
    app.add_typer(models_app, name="models")


def _register_query() -> None:
    from vigil.query.cli import query

    app.command(name="query")(query)


def _register_stream() -> None:
    from vigil.stream.cli import consume

    app.command(name="consume")(consume)


def _register_profiles() -> None:
    from vigil.profiles.cli import app as profiles_app

    app.add_typer(profiles_app, name="profiles")


_register_privacy()
_register_models()
_register_query()
_register_profiles()
_register_stream()

if __name__ == "__main__":
    app()
