"""``vigil features``: build the point-in-time training set and the daily snapshot tables.

    vigil features build --events events.parquet --labels labels.csv --bank FOLDER --out tx.parquet
    vigil features build --events cards.csv --map timestamp=TX_DATETIME ... --label-column TX_FRAUD
    vigil features snapshots --events events.parquet --feedback feedback.csv --out-dir DIR
    vigil features list [--feature-file features.yaml]

``build`` and ``snapshots`` write Parquet files (all or nothing: written next to the target,
then renamed) and print the figures as one JSON line last. ``--feature-file F`` adds a
feature file's declared windowed aggregations to the built-in features
(:mod:`vigil.features.declared`), checked before anything is read; ``list`` shows them all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vigil.cli_common import progress_display
from vigil.cli_inputs import EventInput, event_options
from vigil.features.declared import load_feature_file, with_declared
from vigil.features.io import read_feedback_frame, read_reference
from vigil.features.offline import transaction_features
from vigil.features.snapshots import Snapshots, snapshot_rows
from vigil.features.spec import FEATURES, Feature

app = typer.Typer(
    help="Features: point-in-time training sets and daily snapshots.", no_args_is_help=True
)
_err = Console(stderr=True)

EventsOpt = Annotated[Path, typer.Option(help="Event file (Parquet/CSV; see Reading options)")]
LabelsOpt = Annotated[Path | None, typer.Option(help="labels.csv: event_id of fraud events")]
FeedbackOpt = Annotated[Path | None, typer.Option(help="feedback.csv: StandIn outcomes, disputes")]
BankOpt = Annotated[Path | None, typer.Option(help="Bank folder: terminal places, account ages")]
FeaturesOpt = Annotated[
    Path | None,
    typer.Option("--feature-file", help="Feature file (YAML): declared features to add"),
]


def _features(path: Path | None) -> tuple[Feature, ...]:
    """The built-in features, and the file's declared ones after them. A file with mistakes
    raises before anything else is read; vigil's error boundary answers it as every command
    does: its first mistake on one line, the rest counted, exit 2."""
    if path is None:
        return FEATURES
    return with_declared(load_feature_file(path))


@contextmanager
def _step(progress: Progress, what: str) -> Iterator[None]:
    task = progress.add_task(what, total=None)
    yield
    progress.update(task, description=f"{what} ✓", completed=1, total=1)


def _progress() -> AbstractContextManager[Progress]:
    return progress_display(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        console=_err,
    )


def _write(frame: pl.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    frame.write_parquet(partial)
    partial.replace(out)


def _guarded(run: Callable[[], dict]) -> None:
    """Run and print the figures; an error is answered by vigil's error boundary (one line,
    exit 2 for a missing or bad input file)."""
    print(json.dumps(run(), default=str))


@app.command()
@event_options()
def build(
    events: EventsOpt,
    out: Annotated[Path, typer.Option(help="Parquet file for the training set")],
    inputs: EventInput,
    labels: LabelsOpt = None,
    bank: BankOpt = None,
    features: FeaturesOpt = None,
) -> None:
    """One row per completed transaction with every declared feature, as of just before it."""
    declared = _features(features)

    def run() -> dict:
        began = time.perf_counter()
        with _progress() as progress:
            with _step(progress, "reading"):
                frame, known = inputs.frame(events, labels=labels)
                reference = read_reference(bank) if bank is not None else None
            with _step(progress, f"computing {len(declared)} features"):
                table = transaction_features(
                    frame,
                    labels=known,
                    label_delay=inputs.label_delay,
                    reference=reference,
                    features=declared,
                )
            with _step(progress, "writing"):
                _write(table, out)
        return {
            "transactions": table.height,
            "features": len(declared),
            "labelled": int(table["label"].sum()) if "label" in table.columns else None,
            "seconds": round(time.perf_counter() - began, 3),
            "out": str(out),
        }

    _guarded(run)


@app.command()
@event_options()
def snapshots(
    events: EventsOpt,
    out_dir: Annotated[Path, typer.Option(help="Folder for the four Parquet tables")],
    inputs: EventInput,
    feedback: FeedbackOpt = None,
    labels: LabelsOpt = None,
    bank: BankOpt = None,
    save: Annotated[
        bool, typer.Option("--save", help="Also upsert the daily tables into the database")
    ] = False,
    database: Annotated[str | None, typer.Option(help="Database URL (else settings)")] = None,
) -> None:
    """Daily user_aggregated_features and card_aggregated_features, and the StandIn
    user_model_training_data and card_model_training_data built on them."""

    def run() -> dict:
        began = time.perf_counter()
        with _progress() as progress:
            with _step(progress, "reading"):
                frame, known = inputs.frame(events, labels=labels)
                kwargs = {
                    "feedback": read_feedback_frame(feedback) if feedback is not None else None,
                    "labels": known,
                    "label_delay": inputs.label_delay,
                    "reference": read_reference(bank) if bank is not None else None,
                }
            tables: dict[str, pl.DataFrame] = {}
            with _step(progress, "daily snapshots"):
                # the history built once for all four tables
                snapshots = Snapshots(frame, **kwargs)
                for kind in ("user", "card"):
                    tables[f"{kind}_aggregated_features"] = snapshots.table(kind)
            with _step(progress, "training sets"):
                if kwargs["feedback"] is not None:
                    for kind in ("user", "card"):
                        tables[f"{kind}_model_training_data"] = snapshots.training(kind)
            with _step(progress, "writing"):
                for name, table in tables.items():
                    _write(table, out_dir / f"{name}.parquet")
            saved = {}
            if save:
                with _step(progress, "saving to the database"):
                    # imported here: vigil.cli registers this module's commands on import
                    from vigil.cli import _settings, _store

                    store = _store(_settings(database))
                    with store.transaction() as conn:
                        for kind in ("user", "card"):
                            rows = snapshot_rows(tables[f"{kind}_aggregated_features"])
                            saved[kind] = store.save_aggregated_features(kind, rows, conn)
        figures: dict = {name: table.height for name, table in tables.items()}
        if save:
            figures["saved"] = saved
        figures["seconds"] = round(time.perf_counter() - began, 3)
        figures["out_dir"] = str(out_dir)
        return figures

    _guarded(run)


@app.command("list")
def list_features(features: FeaturesOpt = None) -> None:
    """Every feature: the built-in ones, then a feature file's; one line each (name, over,
    aggregation, window, transaction types, what it is), and a JSON line of counts."""
    chosen = _features(features)
    for f in chosen:
        types = "all" if f.categories == FEATURES[0].categories else ",".join(f.categories)
        where = "built-in" if f in FEATURES else "declared"
        print(
            f"{f.name:28s} {where:8s} {f.entity:8s} {f.aggregation:12s} "
            f"{f.window or '-':4s} {types:24s} {f.doc}"
        )
    print(json.dumps({"features": len(chosen), "declared": len(chosen) - len(FEATURES)}))
