"""Structured logs: one configuration for the long-running commands (``vigil serve``,
``vigil consume``), set once at their start.

vigil's modules log with the standard library (``logging.getLogger(__name__)``); every record
goes through structlog's :class:`~structlog.stdlib.ProcessorFormatter`, so each line carries the
time (UTC), level, logger, the record's message as ``event``, any ``extra=`` fields, the values
bound with :func:`structlog.contextvars.bind_contextvars` (the HTTP request id,
:mod:`vigil.api.request_id`) and, inside an OpenTelemetry span, its ``trace_id`` and
``span_id``. Lines are JSON, one object each, when stderr is not a terminal (a container, a
service manager, a pipe), and coloured key=value pairs on a terminal.

vigil's own loggers (``vigil.*``) and uvicorn's take the level given; every other library's
take it too, but never below ``info``, so ``debug`` shows vigil's per-decision lines without
every library's chatter (and alembic's list of its plugins never below ``warning``).

>>> import io, json
>>> out = io.StringIO()
>>> configure("info", json=True, stream=out)
True
>>> logging.getLogger("vigil.example").info("took partition %d", 3, extra={"owner": "w-1"})
>>> line = json.loads(out.getvalue())
>>> line["event"], line["level"], line["logger"], line["owner"]
('took partition 3', 'info', 'vigil.example', 'w-1')
>>> reset()
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from opentelemetry import trace

__all__ = ["ENV", "LEVELS", "configure", "configure_from_env", "level_number", "reset"]

# uvicorn's level names (--log-level), ``trace`` included (below debug).
LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}
# Where :func:`configure` leaves its settings (``<level>,<json|console>``) for the processes
# started after it (``vigil serve --workers N``'s workers, the writer process), which take
# them with :func:`configure_from_env`.
ENV = "VIGIL_LOG"
# Libraries' loggers that narrate at info what no operator acts on, quiet below warning:
# alembic names each of its plugins (seven lines) at every start of serve and consume.
_CHATTY = ("alembic.runtime.plugins",)
# The name of the one handler this module installs on the root logger (replaced, not added
# again, by a second call).
_HANDLER = "vigil-structlog"


def level_number(level: str | int) -> int:
    """A level name (uvicorn's, any case) or number as a number; ValueError naming it."""
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level: {level!r} is not one of {', '.join(LEVELS)}") from None


def _add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The current OpenTelemetry span's ids, when a line is written inside one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _drop_colour_message(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """uvicorn passes its message again with terminal colours as an extra: not a field."""
    event_dict.pop("color_message", None)
    return event_dict


def configure(
    level: str | int = "info", json: bool | None = None, *, stream: TextIO | None = None
) -> bool:
    """Send every log record to ``stream`` (stderr) through structlog, at ``level``.

    ``json``: JSON lines (True), console rendering (False), or JSON unless ``stream`` is a
    terminal (None). Calling it again replaces the earlier configuration. Returns whether the
    lines are JSON. The settings are left in :data:`ENV` for child processes.
    """
    number = level_number(level)
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(stream, "isatty") and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    # structlog's own loggers (structlog.get_logger()), should a module use one, end in the
    # same handler as the standard library's.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: list[Any] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=_colours(stream))]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_colour_message],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    _remove_handler(root)
    root.addHandler(handler)
    root.setLevel(max(number, logging.INFO))
    for name in ("vigil", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(number)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(number, logging.WARNING))
    os.environ[ENV] = f"{level},{'json' if json else 'console'}"
    return json


def configure_from_env() -> None:
    """The configuration a parent process left in :data:`ENV` (``vigil serve --workers``'s
    workers, the writer process); nothing when it left none."""
    value = os.environ.get(ENV)
    if not value:
        return
    level, _, render = value.partition(",")
    configure(level, json=render != "console" if render else None)


def reset() -> None:
    """Undo :func:`configure` (tests): the handler goes, levels and structlog's defaults
    come back."""
    _remove_handler(logging.getLogger())
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("vigil", "uvicorn", "uvicorn.error", *_CHATTY):
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    os.environ.pop(ENV, None)


def _remove_handler(root: logging.Logger) -> None:
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER:
            root.removeHandler(handler)
            handler.close()


def _colours(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()
