"""OpenTelemetry spans of the engine's stages: one span per event holding one per stage, in the
order the event goes through them, each with the event id; none at all without a recording
tracer provider (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from vigil.domain import parse_event
from vigil.engine import EVENT_ID, STAGES, Engine, tracing_configured
from vigil.replay import replay

STAGE_SPANS = [f"vigil.{stage}" for stage in STAGES]
LOGIN = {
    "kind": "login",
    "event_id": "l-1",
    "user_id": "u-1",
    "timestamp": "2022-01-01T09:00:00Z",
    "country": "NG",
}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    yield found
    found.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def _by_start(spans: Any) -> list[ReadableSpan]:
    return sorted(spans, key=lambda span: span.start_time)


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    parent_id = parent.context.span_id
    return _by_start(s for s in spans if s.parent is not None and s.parent.span_id == parent_id)


def _root(spans: list[ReadableSpan]) -> ReadableSpan:
    (root,) = [span for span in spans if span.name == "vigil.event"]
    return root


def test_one_process_is_an_event_span_holding_the_stage_spans_in_order(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    decision = engine.process(LOGIN)
    spans = list(exporter.get_finished_spans())
    root = _root(spans)
    stages = _children(spans, root)
    assert [span.name for span in stages] == STAGE_SPANS
    assert len(spans) == len(STAGE_SPANS) + 1
    assert all(span.attributes[EVENT_ID] == "l-1" for span in stages)
    for earlier, later in pairwise(stages):  # one after another
        assert earlier.end_time <= later.start_time
    assert root.start_time <= stages[0].start_time and stages[-1].end_time <= root.end_time
    assert dict(root.attributes) == {
        EVENT_ID: "l-1",
        "vigil.event_kind": "login",
        "vigil.decision_id": decision.decision_id,
        "vigil.action": "allow",
        "vigil.score": 0.0,
        "vigil.repeat": False,
    }
    assert all(span.context.trace_id == root.context.trace_id for span in stages)


def test_a_repeat_stops_after_validation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    engine.process(LOGIN)
    exporter.clear()
    engine.process(LOGIN)
    spans = list(exporter.get_finished_spans())
    root = _root(spans)
    assert [span.name for span in _children(spans, root)] == ["vigil.validate"]
    assert root.attributes["vigil.repeat"] is True


def test_an_invalid_event_fails_its_validate_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    with pytest.raises(ValueError):
        engine.process({**LOGIN, "timestamp": "yesterday"})
    spans = list(exporter.get_finished_spans())
    root = _root(spans)
    (validate,) = _children(spans, root)
    assert validate.name == "vigil.validate" and EVENT_ID not in validate.attributes
    assert validate.status.status_code is StatusCode.ERROR
    assert root.status.status_code is StatusCode.ERROR
    assert [event.name for event in validate.events] == ["exception"]
    # The engine goes on, and its context is its caller's again.
    assert not trace.get_current_span().get_span_context().is_valid
    engine.process(LOGIN)


def test_a_replay_deciding_directly_has_the_stages_after_validation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    engine.decide(parse_event(LOGIN))  # as vigil replay calls it
    spans = list(exporter.get_finished_spans())
    stages = _children(spans, _root(spans))
    assert [span.name for span in stages] == STAGE_SPANS[1:]
    assert all(span.attributes[EVENT_ID] == "l-1" for span in stages)


def test_spans_nest_under_the_callers_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("POST /v1/logins") as request:
        engine.process(LOGIN)
    spans = list(exporter.get_finished_spans())
    assert _root(spans).parent.span_id == request.get_span_context().span_id


def test_without_a_recording_provider_the_engine_creates_no_span() -> None:
    assert not tracing_configured()  # the tests never install a global provider
    assert not tracing_configured(trace.NoOpTracerProvider())
    assert tracing_configured(TracerProvider())
    engine = Engine.in_memory()
    assert engine._tracer is None and "process" not in vars(engine)
    assert engine.process(LOGIN).event_id == "l-1"
    silent = Engine.in_memory(tracer_provider=trace.NoOpTracerProvider())
    assert "process" not in vars(silent) and "decide" not in vars(silent)


def test_a_replay_is_traced_too(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    engine = Engine.in_memory(tracer_provider=provider)
    events = [
        {**LOGIN, "event_id": f"l-{i}", "timestamp": f"2022-01-01T09:0{i}:00Z"} for i in range(3)
    ]
    assert replay(engine, [parse_event(e) for e in events]).events == 3
    roots = [span for span in exporter.get_finished_spans() if span.name == "vigil.event"]
    assert sorted(root.attributes[EVENT_ID] for root in roots) == ["l-0", "l-1", "l-2"]
