"""The input options every command that reads events or labels takes, spelled once.

``@event_options`` adds ``--format``, ``--map``, ``--default-type``, ``--default-channel``,
``--label-column``, ``--label-delay`` and ``--amounts`` to a command and hands it one
:class:`~vigil.ingest.inputs.EventInput` (the ``inputs`` parameter) built from them, so
``import events``, ``replay``, ``features build``, ``train``, ``score``, ``backtest`` and
``evaluate`` cannot drift apart in names, defaults or help. ``labels=False`` leaves the two
label options out, for a command that reads no labels.

>>> import typer
>>> from typer.testing import CliRunner
>>> app = typer.Typer()
>>> @app.command()
... @event_options()
... def show(inputs: EventInput) -> None:
...     print(inputs.format, dict(inputs.mapping), inputs.label_delay.days, inputs.amounts)
>>> print(CliRunner().invoke(app, ["--map", "amount=AMT", "--label-delay", "3d"]).output.strip())
auto {'amount': 'AMT'} 3 strict
>>> CliRunner().invoke(app, ["--amounts", "exact"]).exit_code
2
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from vigil.ingest.inputs import (
    AMOUNTS,
    DEFAULT_LABEL_DELAY,
    FORMATS,
    EventInput,
    parse_duration,
    parse_map,
)

F = TypeVar("F", bound=Callable[..., Any])

_PANEL = "Reading the event file"
_DELAY_TEXT = f"{DEFAULT_LABEL_DELAY.days}d"

# name: (annotation, default). Every default is "not given": EventInput holds the real ones.
_OPTIONS: dict[str, tuple[Any, Any]] = {
    "fmt": (
        Annotated[
            str,
            typer.Option(
                "--format",
                help="Layout: auto, atm (ATM stream), generic (mapped) or engine (vigil's own)",
                rich_help_panel=_PANEL,
            ),
        ],
        "auto",
    ),
    "map_": (
        Annotated[
            list[str],
            typer.Option(
                "--map",
                help="FIELD=COLUMN: read a domain field from this column (repeatable)",
                rich_help_panel=_PANEL,
            ),
        ],
        [],
    ),
    "default_type": (
        Annotated[
            str | None,
            typer.Option(
                help="A transaction's type when its row has none (withdrawal, deposit, "
                "transfer, payment, balance_inquiry)",
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    "default_channel": (
        Annotated[
            str | None,
            typer.Option(
                help="A transaction's channel when its row has none (atm, pos, online, "
                "mobile); never guessed",
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    "amounts": (
        Annotated[
            str,
            typer.Option(
                help="strict: refuse amounts with more than 2 decimals; round: round to cents",
                rich_help_panel=_PANEL,
            ),
        ],
        "strict",
    ),
}
_LABEL_OPTIONS: dict[str, tuple[Any, Any]] = {
    "label_column": (
        Annotated[
            str | None,
            typer.Option(
                help="Column of the event file with the fraud label (1/true/fraud, "
                "0/false/legitimate, …)",
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    "label_delay": (
        Annotated[
            str,
            typer.Option(
                help="How long after its event a label is known (7d, 12h, 3600)",
                rich_help_panel=_PANEL,
            ),
        ],
        _DELAY_TEXT,
    ),
}


def event_input(
    *,
    fmt: str = "auto",
    map_: list[str] | None = None,
    default_type: str | None = None,
    default_channel: str | None = None,
    amounts: str = "strict",
    label_column: str | None = None,
    label_delay: str = _DELAY_TEXT,
) -> EventInput:
    """The :class:`EventInput` the options say; a bad one is a usage error naming it."""
    try:
        return EventInput(
            format=fmt,  # type: ignore[arg-type]  (checked by EventInput)
            mapping=parse_map(map_ or []),
            default_type=default_type,
            default_channel=default_channel,
            amounts=amounts,  # type: ignore[arg-type]
            label_column=label_column,
            label_delay=parse_duration(label_delay),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def event_options(*, labels: bool = True) -> Callable[[F], F]:
    """Give a command the input options; it receives them as ``inputs: EventInput``."""
    options = {**_OPTIONS, **(_LABEL_OPTIONS if labels else {})}

    def wrap(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.name != "inputs"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for name, (a, d) in options.items()
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in options if name in kwargs}
            return command(*args, inputs=event_input(**given), **kwargs)

        run.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {
            **{p.name: p.annotation for p in kept},
            **{name: a for name, (a, _) in options.items()},
        }
        return run  # type: ignore[return-value]

    return wrap


__all__ = ["AMOUNTS", "FORMATS", "EventInput", "event_input", "event_options"]
