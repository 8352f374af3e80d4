"""Prometheus metrics of one API instance: decisions by action, latency, errors, reasons and
rule hits, and the process's own (CPU, memory, open files, garbage collection, Python version).

Each app gets its own registry, so several apps in one process (tests) do not collide. Under
``vigil serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) every worker counts in files of
that folder, and ``/metrics``, whichever worker answers it, sums them over all workers; the
process metrics are then left out (each scrape would show whichever worker answered, a counter
jumping between processes): a process exporter or the container runtime has those.

>>> from vigil.domain import Reason
>>> m = ApiMetrics()
>>> m.decided("transaction", "allow", 0.00012)
>>> m.explained([Reason(code="rule:big", score=0.3)], [Reason(code="rule:trial", score=0.9)])
>>> m.repeated("transaction")
>>> text = m.render()
>>> b'vigil_decisions_total{action="allow",kind="transaction"} 1.0' in text
True
>>> b'vigil_repeated_events_total{kind="transaction"} 1.0' in text
True
>>> b'vigil_reasons_total{code="rule:big"} 1.0' in text
True
>>> b'vigil_rule_hits_total{rule="trial",shadow="true"} 1.0' in text
True
>>> b"process_cpu_seconds_total" in text
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from vigil.domain import Reason

__all__ = ["CONTENT_TYPE", "RULE_PREFIX", "ApiMetrics"]

# The reason code of an analysts' rule's hit: rule:<name> (vigil.rules.book).
RULE_PREFIX = "rule:"

# The engine decides in tens to hundreds of microseconds; the request around it in milliseconds.
_ENGINE_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3)
_REQUEST_BUCKETS = (250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def add_process_collectors(registry: CollectorRegistry) -> None:
    """This process's CPU, memory and open files; Python's collections and version."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "vigil_decisions",
            "Decisions taken, by kind and action (repeated event ids are counted apart).",
            ["kind", "action"],
            registry=self.registry,
        )
        self.repeats = Counter(
            "vigil_repeated_events",
            "Events answered with the decision their event id got before, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.engine_latency = Histogram(
            "vigil_decision_latency_seconds",
            "The engine's own time per decision (validation to record), by event kind.",
            ["kind"],
            buckets=_ENGINE_BUCKETS,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "vigil_decision_request_seconds",
            "Time from a decision request's arrival in the route to its answer, by route.",
            ["route"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "vigil_http_errors",
            "Requests answered with an error, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.unrecorded = Counter(
            "vigil_unrecorded_decisions",
            "Decisions answered but not written to the database after every retry.",
            registry=self.registry,
        )
        self.commit_batch = Histogram(
            "vigil_commit_batch_decisions",
            "Decisions per batch handed to the writer (a group commit): larger under load, "
            "when each decision's share of a commit is smaller.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.buffered = Gauge(
            "vigil_buffered_decisions",
            "Decisions answered and not yet committed to the database.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.reasons = Counter(
            "vigil_reasons",
            "Reasons given in decisions, by reason code (a rule in force is rule:<name>).",
            ["code"],
            registry=self.registry,
        )
        self.rule_hits = Counter(
            "vigil_rule_hits",
            "Hits of the analysts' rules, by rule name; shadow=\"true\": a shadow rule's, "
            "recorded on the decision and changing nothing.",
            ["rule", "shadow"],
            registry=self.registry,
        )
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            add_process_collectors(self.registry)
        # Label lookups cost a lock and a dict walk; the hot path reuses the children.
        self._decided: dict[tuple[str, str], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._request_latency: dict[str, Histogram] = {}
        self._reasons: dict[str, Counter] = {}
        self._rule_hits: dict[tuple[str, bool], Counter] = {}

    def decided(self, kind: str, action: str, seconds: float) -> None:
        counter = self._decided.get((kind, action))
        if counter is None:
            counter = self._decided[(kind, action)] = self.decisions.labels(kind, action)
        counter.inc()
        histogram = self._latency.get(kind)
        if histogram is None:
            histogram = self._latency[kind] = self.engine_latency.labels(kind)
        histogram.observe(seconds)

    def explained(self, reasons: Iterable[Reason], shadow: Iterable[Reason] = ()) -> None:
        """A decision's reasons, and its shadow rules' hits (:attr:`Decision.shadow`)."""
        counters = self._reasons
        for reason in reasons:
            code = reason.code
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = self.reasons.labels(code)
            counter.inc()
            if code.startswith(RULE_PREFIX):
                self._rule_hit(code, False)
        for hit in shadow:
            self._rule_hit(hit.code, True)

    def _rule_hit(self, code: str, shadow: bool) -> None:
        counter = self._rule_hits.get((code, shadow))
        if counter is None:
            counter = self._rule_hits[(code, shadow)] = self.rule_hits.labels(
                code.removeprefix(RULE_PREFIX), "true" if shadow else "false"
            )
        counter.inc()

    def answered(self, path: str, seconds: float) -> None:
        """A request to a decision route answered, after ``seconds``."""
        histogram = self._request_latency.get(path)
        if histogram is None:
            histogram = self._request_latency[path] = self.request_latency.labels(path)
        histogram.observe(seconds)

    def repeated(self, kind: str) -> None:
        self.repeats.labels(kind).inc()

    def error(self, status: int) -> None:
        self.errors.labels(str(status)).inc()

    def render(self) -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)
        return generate_latest(every_worker)
