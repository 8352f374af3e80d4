"""Structured logs (vigil.logs): the standard library's records as JSON lines or console text,
with extras, bound context, trace ids and exceptions; levels as uvicorn names them."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from vigil import logs


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    logs.reset()


def _json(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_off_a_terminal_with_extras_context_and_exceptions() -> None:
    out = io.StringIO()
    assert logs.configure("info", stream=out) is True
    structlog.contextvars.bind_contextvars(request_id="r-1")
    logging.getLogger("vigil.stream.leases").info("took partition %d", 2, extra={"owner": "w"})
    structlog.contextvars.clear_contextvars()
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logging.getLogger("vigil.api.recording").exception("the writer failed")
    took, failed = _json(out)
    assert took["event"] == "took partition 2" and took["owner"] == "w"
    assert took["request_id"] == "r-1" and took["logger"] == "vigil.stream.leases"
    assert took["level"] == "info" and "T" in took["timestamp"]
    assert failed["level"] == "error" and "request_id" not in failed
    assert failed["exception"][0]["exc_type"] == "RuntimeError"


def test_console_rendering_on_a_terminal() -> None:
    out = Terminal()
    assert logs.configure("info", stream=out) is False
    logging.getLogger("vigil.x").warning("lost partition %d", 1)
    line = out.getvalue()
    assert "lost partition 1" in line and "vigil.x" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_levels_vigil_at_the_level_given_other_libraries_not_below_info() -> None:
    out = io.StringIO()
    logs.configure("DEBUG", json=True, stream=out)
    logging.getLogger("vigil.api.service").debug("decided", extra={"score": 0.5})
    logging.getLogger("uvicorn.error").debug("uvicorn's own")
    logging.getLogger("somelibrary").debug("chatter")
    logging.getLogger("somelibrary").info("news")
    assert [line["event"] for line in _json(out)] == ["decided", "uvicorn's own", "news"]
    logs.configure("warning", json=True, stream=out)
    assert not logging.getLogger("vigil.api.service").isEnabledFor(logging.INFO)
    assert logs.level_number("trace") == 5 and logs.level_number(10) == 10
    with pytest.raises(ValueError, match="log level: 'loud'"):
        logs.configure("loud")


def test_alembics_list_of_its_plugins_is_left_out_and_its_migrations_kept() -> None:
    """alembic names each of its plugins at info on every start of serve and consume (seven
    lines before anything vigil says); what it migrates stays."""
    out = io.StringIO()
    logs.configure("debug", json=True, stream=out)
    logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.types")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0004 -> 0005")
    logging.getLogger("alembic.runtime.plugins").warning("a plugin failed")
    assert [line["event"] for line in _json(out)] == [
        "Running upgrade 0004 -> 0005",
        "a plugin failed",
    ]
    logs.reset()
    assert logging.getLogger("alembic.runtime.plugins").level == logging.NOTSET


def test_uvicorns_coloured_copy_of_a_message_is_left_out() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "\x1b[1m7\x1b[0m"}
    )
    (line,) = _json(out)
    assert line["event"] == "Started server process [7]" and "color_message" not in line


def test_lines_inside_a_span_carry_its_trace_and_span_ids() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("vigil.x").info("inside")
    logging.getLogger("vigil.x").info("outside")
    inside, outside = _json(out)
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def test_child_processes_configure_themselves_as_their_parent_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs.configure("debug", json=False, stream=io.StringIO())
    assert logs.ENV in os.environ
    calls = []
    monkeypatch.setattr(logs, "configure", lambda level, json: calls.append((level, json)))
    logs.configure_from_env()
    assert calls == [("debug", False)]
    monkeypatch.delenv(logs.ENV)
    logs.configure_from_env()
    assert calls == [("debug", False)]  # nothing left: nothing done


def test_structlog_loggers_end_in_the_same_lines() -> None:
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    structlog.get_logger("vigil.y").info("hello", partition=3)
    (line,) = _json(out)
    assert line["event"] == "hello" and line["partition"] == 3 and line["logger"] == "vigil.y"
