"""``vigil train``, ``vigil score transactions|profiles``, ``vigil models list|show|promote|...``.

Registered in :mod:`vigil.cli`; like every vigil command, each prints its figures as one JSON
object on its last line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from vigil.cli_common import INPUT_ERROR, error_line
from vigil.cli_inputs import EventInput, event_options
from vigil.config import Settings
from vigil.ingest import IngestError

models_app = typer.Typer(help="The model registry: list, show, promote.", no_args_is_help=True)
score_app = typer.Typer(
    help="Batch scores: transactions with the transaction model, users and cards for StandIn.",
    no_args_is_help=True,
)
console = Console()

TARGETS = ("transaction", "user", "card", "combiner")
DatabaseOpt = Annotated[
    str | None, typer.Option("--database", "-d", help="Database URL (default: VIGIL_DATABASE_URL)")
]
BankOpt = Annotated[
    Path | None,
    typer.Option(help="Bank folder: terminal places and account dates for the features"),
]
RegistryOpt = Annotated[
    Path | None, typer.Option("--registry", help="Registry folder (default: <data_dir>/models)")
]


def _settings(database: str | None = None, registry: Path | None = None) -> Settings:
    settings = Settings(database_url=database) if database else Settings()
    if registry is not None:
        settings.models.registry_dir = registry
    return settings


def _registry(settings: Settings):  # -> Registry, imported lazily to keep `vigil --help` fast
    from vigil.models.registry import Registry
    from vigil.models.scorer import registry_dir

    return Registry(registry_dir(settings))


def _emit(figures: dict) -> None:
    print(json.dumps(figures, default=str))


def _fail(message: str) -> None:
    # Plain: a path is not read as markup, and a long message is not wrapped.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _refuse(exc: ValueError | IngestError) -> NoReturn:
    """Input vigil cannot use, on the one line every command's errors take (a rejected file's
    first bad row, a feature file's first mistake; the rest counted), exit code 2."""
    typer.echo(error_line(exc), err=True)
    raise typer.Exit(code=INPUT_ERROR)


@event_options()
def train(
    inputs: EventInput,
    events: Annotated[
        Path | None, typer.Option(help="Labelled event file (CSV or Parquet)")
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option("--features", help="A feature table from vigil features build, not events"),
    ] = None,
    feature_file: Annotated[
        Path | None,
        typer.Option(
            "--feature-file",
            help="Feature file (YAML): its declared features become model inputs too",
        ),
    ] = None,
    train_period: Annotated[
        str | None,
        typer.Option(
            "--train", help="Train on FROM..UNTIL (dates included, or ISO times); with --test"
        ),
    ] = None,
    test_period: Annotated[
        str | None, typer.Option("--test", help="Test on FROM..UNTIL, after the train period")
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="labels.csv (fraud event ids)")] = None,
    feedback: Annotated[
        Path | None, typer.Option(help="feedback.csv (StandIn outcomes; user/card targets)")
    ] = None,
    target: Annotated[
        str,
        typer.Option(help="transaction, user, card, or combiner (the decision score, stacked)"),
    ] = "transaction",
    stack_on: Annotated[
        str | None,
        typer.Option(
            "--stack-on",
            help="combiner: the transaction model version to stack on (default: the served one)",
        ),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="lightgbm or logreg")] = "lightgbm",
    k: Annotated[int, typer.Option(help="Cards an analyst team checks a day (precision@k)")] = 10,
    drop: Annotated[
        list[str], typer.Option("--drop", help="Feature to leave out, repeatable")
    ] = [],  # noqa: B006
    promote: Annotated[
        bool,
        typer.Option(help="Promote the new version if it tests no worse than the promoted one"),
    ] = False,
    bank: BankOpt = None,
    keep_terminal_risk: Annotated[
        bool,
        typer.Option(
            "--keep-terminal-risk/--no-terminal-risk",
            help="Terminal-risk features (the engine learns them from fraud feedback)",
        ),
    ] = True,
    registry: RegistryOpt = None,
) -> None:
    """Train a model on a labelled event file (or feature table), store it in the registry,
    write its report.

    With --train and --test the model fits the first period and is measured on the second,
    the whole file's earlier history feeding the features and each fraud label counting once
    it has arrived (--label-delay after its event); else the rows are split 60/20/20 in time.

    --target combiner replays the file through the engine with the served transaction model
    and stacks the decision score's combiner on its decisions over the train period, measured
    on the test period against the detectors alone and the model alone.
    """
    from vigil.models.pipeline import train_target
    from vigil.models.split import Period

    if target not in TARGETS:
        _fail(f"--target {target!r}: expected one of {', '.join(TARGETS)}")
    if stack_on is not None and target != "combiner":
        _fail("--stack-on: only a combiner is stacked on a transaction model")
    if target == "combiner" and events is None:
        _fail("--target combiner: give --events (the engine's decisions on them are learnt from)")
    if (train_period is None) != (test_period is None):
        raise typer.BadParameter("give --train and --test together")
    try:
        periods = (
            None
            if train_period is None or test_period is None
            else (Period.parse(train_period), Period.parse(test_period))
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = _settings(registry=registry)
    if target == "combiner":
        _train_combiner(
            settings,
            events=events,  # type: ignore[arg-type]
            labels=labels,
            inputs=inputs,
            periods=periods,
            k=k,
            promote=promote,
            bank=bank,
            stack_on=stack_on,
            feature_file=feature_file,
        )
        return
    try:
        with console.status(f"building the {target} training table and training {model}"):
            figures = train_target(
                _registry(settings),
                target=target,
                events=events,
                labels=labels,
                feedback=feedback,
                inputs=inputs,
                feature_table=features,
                periods=periods,
                kind=model,
                k=k,
                drop=drop,
                promote=promote,
                bank=bank,
                keep_terminal_risk=keep_terminal_risk,
                feature_file=feature_file,
            )
    except LookupError as exc:  # no promoted model, or no such version
        _fail(str(exc))
    except (ValueError, IngestError) as exc:  # a bad file, row or option: named on one line
        _refuse(exc)
    _print_metrics(figures)
    _print_days(figures["test_by_day"], k)
    if empty := figures["uninformative_features"]:
        named = ", ".join(f"{name} ({why})" for name, why in empty.items())
        console.print(
            f"[yellow]{len(empty)} feature(s) carry nothing on this data[/]: {named}; "
            "map what they need (--map), or --drop them"
        )
    console.print(f"report: [bold]{figures['report']}[/]")
    _emit(figures)
    if figures["promotion_refused"]:
        _fail(
            f"--promote: {figures['promotion_refused']}; {figures['version']} is kept as a "
            f"candidate (vigil models promote {target} {figures['version']} promotes it anyway)"
        )


def _train_combiner(settings: Settings, **job: Any) -> None:
    """``vigil train --target combiner``: stack, print the test period's comparison, store."""
    from vigil.models.stacking import COMPARED, train_combiner

    paths = ("events", "labels", "bank", "feature_file")
    job["sources"] = {name: None if job[name] is None else str(job[name]) for name in paths}
    job["sources"]["input"] = job["inputs"].as_dict()
    try:
        with console.status("replaying the events through the engine and stacking the combiner"):
            figures = train_combiner(_registry(settings), settings, **job)
    except LookupError as exc:  # no promoted model, or no such version
        _fail(str(exc))
    except (ValueError, IngestError) as exc:  # a bad file, row or option: named on one line
        _refuse(exc)
    k = job["k"]
    table = Table(
        "score", "ROC AUC", "average precision", f"card precision@{k}",
        title=f"combiner {figures['version']} stacked on transaction {figures['stacked_on']}: "
        "test period",
    )  # fmt: skip
    named = {"detectors": "detectors alone", "model": "model alone", "stacked": "stacked"}
    for name in COMPARED:
        m = figures["compared"][name]
        table.add_row(
            named[name],
            _fmt(m["roc_auc"]),
            _fmt(m["average_precision"]),
            _fmt(m.get(f"card_precision_at_{k}")),
        )
    console.print(table)
    _print_days(figures["test_by_day"], k)
    console.print(
        f"{figures['stacked_events']:,} events stacked on ({figures['stacked_frauds']:,} "
        f"frauds), {len(figures['codes'])} reason codes weighed: {', '.join(figures['codes'])}"
    )
    console.print(f"report: [bold]{figures['report']}[/]")
    _emit(figures)
    if figures["served_model"] != figures["stacked_on"]:
        typer.echo(
            f"warning: the engine serves transaction {figures['served_model']}; this combiner "
            f"is used only beside {figures['stacked_on']}",
            err=True,
        )
    if figures["promotion_refused"]:
        _fail(
            f"--promote: {figures['promotion_refused']}; {figures['version']} is kept as a "
            f"candidate (vigil models promote combiner {figures['version']} promotes it anyway)"
        )


@score_app.command("profiles")
@event_options()
def score(
    events: Annotated[Path, typer.Option(help="Event file (CSV or Parquet)")],
    feedback: Annotated[Path, typer.Option(help="feedback.csv: StandIn outcomes, disputes")],
    inputs: EventInput,
    labels: Annotated[Path | None, typer.Option(help="labels.csv (fraud event ids)")] = None,
    bank: BankOpt = None,
    database: DatabaseOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Score every user and card with the promoted user and card models; choose StandIn
    thresholds.

    Scores are read on the daily snapshot after the last event and stored in
    user_profile_scores / card_profile_scores; the thresholds meet [models.standin]'s target.
    """
    from vigil.models.pipeline import score_profiles

    settings = _settings(database, registry)
    from vigil.cli import _store

    try:
        with console.status("scoring users and cards"):
            figures = score_profiles(
                _store(settings),
                _registry(settings),
                settings.models.standin,
                events=events,
                feedback=feedback,
                labels=labels,
                inputs=inputs,
                bank=bank,
            )
    except LookupError as exc:  # no promoted model, or no such version
        _fail(str(exc))
    except (ValueError, IngestError) as exc:  # a bad file, row or option: named on one line
        _refuse(exc)
    table = Table("figure", "value", title="batch scores and StandIn policy")
    for key, value in _flat(figures).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    _emit(figures)


@score_app.command("transactions")
@event_options()
def score_transactions(
    events: Annotated[Path, typer.Argument(help="Event file (CSV or Parquet)")],
    inputs: EventInput,
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file for the scores")],
    version: Annotated[
        str | None, typer.Option(help="Model version (default: the promoted one)")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="labels.csv: terminal-risk features, and metrics")
    ] = None,
    bank: BankOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Score every completed transaction of a file with the transaction model; write
    event_id, transaction_id, timestamp, card_id, score (and label, when known) to Parquet."""
    from vigil.models.pipeline import score_transactions as run

    reg = _registry(_settings(registry=registry))
    with console.status("building features and scoring transactions"):
        try:
            scores, figures = run(
                reg, events, inputs=inputs, labels=labels, bank=bank, version=version
            )
        except LookupError as exc:  # no promoted model, or no such version
            _fail(str(exc))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        scores.write_parquet(partial)
        partial.replace(out)
    figures["out"] = str(out)
    trained = figures["model_label_delay_seconds"]
    if trained is not None and trained != figures["label_delay_seconds"]:
        typer.echo(
            f"warning: --label-delay is {figures['label_delay_seconds']:.0f} s, the model was "
            f"trained with {trained:.0f} s: its terminal-risk features are read differently",
            err=True,
        )
    console.print(
        f"{figures['transactions']:,} transactions scored by transaction "
        f"{figures['version']} → [bold]{out}[/]"
    )
    _emit(figures)


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model name")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Every stored model version with its status and test metrics."""
    manifests = _registry(_settings(registry=registry)).list(name)
    table = Table(
        "name", "version", "kind", "status", "created", "test ROC AUC", "test AP", title="models"
    )
    for m in manifests:
        test = m.get("metrics", {}).get("test", {})
        table.add_row(
            m["name"],
            m["version"],
            m["kind"],
            m["status"],
            m["created_at"][:19],
            _fmt(test.get("roc_auc")),
            _fmt(test.get("average_precision")),
        )
    console.print(table)
    _emit(
        {
            "models": [
                {key: m.get(key) for key in ("name", "version", "kind", "status", "created_at")}
                for m in manifests
            ]
        }
    )


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Model name: transaction, user, card, combiner")],
    version: Annotated[str | None, typer.Argument(help="Version (default: promoted)")] = None,
    registry: RegistryOpt = None,
) -> None:
    """The manifest of one version (the promoted one by default), as JSON."""
    reg = _registry(_settings(registry=registry))
    try:
        version = version or reg.promoted(name)
        if version is None:
            raise LookupError(f"model {name!r}: no promoted version; name one")
        manifest = reg.manifest(name, version)
    except LookupError as exc:
        _fail(str(exc))
    _emit(manifest)


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[str, typer.Argument(help="Version to serve")],
    registry: RegistryOpt = None,
) -> None:
    """Serve this version (the engine loads the promoted transaction model at start, and the
    promoted combiner beside the model version it was stacked on)."""
    reg = _registry(_settings(registry=registry))
    try:
        manifest = reg.promote(name, version)
    except LookupError as exc:
        _fail(str(exc))
    console.print(f"{name} {version} promoted")
    stacked_on = manifest.get("stacked_on", {}).get("transaction")
    if stacked_on is not None and stacked_on != reg.promoted("transaction"):
        typer.echo(
            f"warning: {name} {version} was stacked on transaction {stacked_on}, not the "
            f"promoted {reg.promoted('transaction')}: the engine uses it only beside {stacked_on}",
            err=True,
        )
    _emit({"name": name, "version": version, "status": manifest["status"]})


@models_app.command("standin")
def standin(
    amount: Annotated[float, typer.Option(help="Amount asked for")],
    user_id: Annotated[str | None, typer.Option(help="User")] = None,
    card_id: Annotated[str | None, typer.Option(help="Card")] = None,
    event_id: Annotated[str | None, typer.Option(help="The StandIn event's id")] = None,
    database: DatabaseOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Decide one StandIn request from the stored scores (and log the inference)."""
    from vigil.cli import _store
    from vigil.models.pipeline import standin_policy_path
    from vigil.models.standin import StandinDecider, StandinPolicy

    settings = _settings(database, registry)
    try:
        policy = StandinPolicy.load(standin_policy_path(_registry(settings)))
    except LookupError as exc:
        _fail(str(exc))
    decision = StandinDecider(_store(settings), policy).decide(
        event_id, user_id=user_id, card_id=card_id, amount=amount
    )
    console.print(f"StandIn: [bold]{decision.decision}[/] (risk {decision.risk:.3f})")
    _emit(decision.__dict__)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def _flat(figures: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def _print_metrics(figures: dict) -> None:
    metrics = figures["metrics"]
    names = sorted({m for part in ("validation", "test") for m in metrics.get(part, {})})
    table = Table("metric", "validation", "test", title=f"{figures['name']} {figures['version']}")
    for m in names:
        row = [metrics.get(part, {}).get(m) for part in ("validation", "test")]
        table.add_row(
            m,
            *(
                v
                if isinstance(v, str)
                else ("—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.4f}"))
                for v in row
            ),
        )
    console.print(table)


def _print_days(days: list[dict[str, Any]], k: int) -> None:
    """The test period day by day: what an alert budget of k cards a day would have given."""
    if not days:
        return
    table = Table(
        "day", "rows", "frauds", "ROC AUC", "average precision", f"card precision@{k}",
        title="test, per day",
    )  # fmt: skip
    for day in days:
        table.add_row(
            day["day"],
            f"{day['rows']:,}",
            f"{day['positives']:,}",
            _fmt(day["roc_auc"]),
            _fmt(day["average_precision"]),
            _fmt(day.get(f"card_precision_at_{k}")),
        )
    console.print(table)
