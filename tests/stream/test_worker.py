"""A ``vigil consume`` worker without a NATS server: its metrics, and a start with NATS
unreachable (tests/stream/test_consume.py has the worker against a real server)."""

from __future__ import annotations

import socket
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from typer.testing import CliRunner

from vigil import logs
from vigil.config import Settings
from vigil.domain import Transaction
from vigil.storage import Store
from vigil.stream import worker as worker_module
from vigil.stream.worker import Worker


def _free_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_workers_metrics_count_its_decisions_reasons_and_process(tmp_path: Path) -> None:
    """The decisions a worker takes are counted in the registry its /metrics serves, by action
    and by reason code, as vigil serve counts them: the dashboard's panels read both."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}")
    store = Store(settings.database_url)
    store.init_schema()
    worker = Worker(settings, store)
    families = generate_latest(worker.metrics.registry).decode()
    for family in ("vigil_reasons_total", "vigil_rule_hits_total", "vigil_decisions_total"):
        assert f"# TYPE {family} counter" in families, family
    service = worker.decision_service()
    try:
        # Six withdrawals of one card within the hour: the last ones have a velocity reason.
        decisions = service.decide(
            [
                Transaction(
                    event_id=f"e-{n}",
                    transaction_id=f"t-{n}",
                    timestamp=datetime(2024, 5, 1, 10, n, tzinfo=UTC),
                    type="withdrawal",
                    amount=Decimal("900.00"),
                    card_id="c-1",
                )
                for n in range(6)
            ]
        )
    finally:
        service.close()
    text = generate_latest(worker.metrics.registry).decode()
    codes = Counter(reason.code for decision in decisions for reason in decision.reasons)
    actions = Counter(decision.action.value for decision in decisions)
    assert codes
    for code, count in codes.items():
        assert f'vigil_reasons_total{{code="{code}"}} {count:.1f}' in text
    for action, count in actions.items():
        assert f'vigil_decisions_total{{action="{action}",kind="transaction"}} {count:.1f}' in text
    for family in ("vigil_rule_hits", "vigil_stream_decided", "process_cpu_seconds"):
        assert f"# TYPE {family}" in text, family


def test_consume_with_nats_unreachable_ends_in_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py alone tries for two minutes at a start, logging a traceback per attempt."""
    from vigil.cli import app

    monkeypatch.setattr(worker_module, "CONNECT_SECONDS", 1.0)
    monkeypatch.setenv("VIGIL_DEV", "1")
    url = f"nats://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    try:
        result = CliRunner().invoke(
            app,
            [
                *("consume", "--nats", url, "--metrics-port", "0"),
                *("-d", f"sqlite:///{tmp_path / 'v.db'}"),
            ],
        )
    finally:
        logs.reset()  # consume set up logging to the runner's stderr, closed now
    assert time.monotonic() - started < 20
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr and '"exception"' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ConnectionError: ") and f"NATS at {url} is unreachable" in last
