"""``vigil consume``: a worker deciding events from NATS JetStream (:mod:`vigil.stream.worker`).

Run as many as needed, on as many hosts, against the same PostgreSQL, Redis and NATS: they
share the partitions, one owner each at a time, and take over a dead worker's within
``stream.lease_seconds``. SIGTERM or Ctrl-C drains: the batch in hand is finished, committed,
published and acknowledged, the profiles checkpointed, the leases given back.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from vigil.cli_common import DatabaseOpt
from vigil.cli_common import emit as _emit
from vigil.cli_common import settings as _settings
from vigil.cli_common import store as _store


def consume(
    database: DatabaseOpt = None,
    nats_url: Annotated[
        str | None, typer.Option("--nats", help="NATS server URL (default: stream.nats_url)")
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(help="Partitions of the event subjects (default: stream.partitions)"),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics (0: none; default: stream.metrics_port)")
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            help="Log level: critical, error, warning, info, debug (a line per decision); "
            "JSON lines unless stderr is a terminal (docs/operations.md)"
        ),
    ] = "info",
) -> None:
    """Decide events from NATS JetStream, publishing each decision once it is committed."""
    from vigil import logs
    from vigil.stream.worker import Worker, check_profiles

    try:
        logs.configure(log_level)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log-level") from None
    settings = _settings(database)
    changes = {
        name: value
        for name, value in (
            ("nats_url", nats_url),
            ("partitions", partitions),
            ("metrics_port", metrics_port),
        )
        if value is not None
    }
    if changes:
        stream = settings.stream.model_copy(update=changes)
        settings = settings.model_copy(update={"stream": stream})
    check_profiles(settings)
    worker = Worker(settings, _store(settings), tune_gc=True)
    typer.echo(
        f"vigil consuming {settings.stream.nats_url} as {worker.owner} "
        f"({settings.stream.partitions} partition(s)); SIGTERM drains",
        err=True,
    )
    _emit(asyncio.run(_run(worker)))


async def _run(worker: object) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await worker.run(stop)  # type: ignore[attr-defined]
