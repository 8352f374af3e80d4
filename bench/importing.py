"""How fast ``vigil import events`` stores a card-payment file, and how much memory it takes.

The file has the shape of the public card-payment dataset the issue was measured on
(customers' cards paying at terminals, a fraud label): generated once under /tmp, never in
the repository, then imported into a fresh SQLite database (or a fresh schema of a PostgreSQL
database, dropped afterwards) by the real command in a child process, so its peak resident
memory is the command's own:

    python bench/importing.py --rows 1300000      # the issue's 1.3 M transactions
    python bench/importing.py --rows 100000       # a quick look
    python bench/importing.py --database postgresql://postgres@127.0.0.1:5432/test

The last line printed is one JSON object: ``rows``, ``seconds`` (the command's wall time,
start-up included), ``rows_per_second``, ``cpu_seconds`` (the command's user and system CPU:
on a shared machine, the wall time also counts waiting for a core, see ``load``, the 1-minute
load average) and ``peak_rss_mb`` (the child's maximum resident set size). On PostgreSQL the
server's own CPU (parsing the COPY, maintaining the indexes) is not in ``cpu_seconds``: when
the server runs on this machine, ``server_cpu_seconds`` is that of the server processes
serving the command's connections (found by their application name, read from /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import create_engine, make_url, text

COLUMNS = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD"
MAP = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "card_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
}


def write_file(path: Path, rows: int, seed: int = 1) -> None:
    """``rows`` card payments over 183 days: 5,000 cards, 10,000 terminals, 0.8 % fraud."""
    rng = np.random.default_rng(seed)
    start = int(datetime(2018, 4, 1, tzinfo=UTC).timestamp())
    seconds = np.sort(rng.integers(0, 183 * 86400, rows)) + start
    frame = pl.DataFrame(
        {
            "TRANSACTION_ID": np.arange(rows),
            "TX_DATETIME": pl.from_epoch(pl.Series(seconds), time_unit="s").dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "CUSTOMER_ID": rng.integers(0, 5000, rows),
            "TERMINAL_ID": rng.integers(0, 10000, rows),
            "TX_AMOUNT": np.round(rng.gamma(2.0, 27.0, rows), 2),
            "TX_FRAUD": (rng.random(rows) < 0.008).astype(np.int8),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A SQLite file in a temporary folder, or a schema of its own in the PostgreSQL database
    at ``url`` (dropped afterwards, so other users of that database are left alone)."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="vigil-import-") as folder:
            yield f"sqlite:///{folder}/v.db"
        return
    schema = f"vigil_import_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        query = {"options": f"-csearch_path={schema}", "application_name": schema}
        yield make_url(url).update_query_dict(query).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class ServerCpu:
    """The CPU seconds of the PostgreSQL server processes serving connections named ``name``
    (their application name), sampled from /proc while the command runs: a process's last
    reading before its connection closes counts. ``None`` when the server is not local."""

    def __init__(self, url: str, name: str) -> None:
        self._engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        self._name = name
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()

    def _watch(self) -> None:
        query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
        with self._engine.connect() as conn:
            while not self._stop.wait(0.2):
                for pid in conn.execute(query, {"name": self._name}).scalars():
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue  # ended, or a server on another machine
                    ticks = int(fields[11]) + int(fields[12])
                    self._seen[pid] = ticks / os.sysconf("SC_CLK_TCK")
                conn.rollback()

    @property
    def seconds(self) -> float | None:
        return round(sum(self._seen.values()), 2) if self._seen else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_300_000)
    parser.add_argument("--file", type=Path, help="CSV to import (default: generated in /tmp)")
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    path = args.file or Path(tempfile.gettempdir()) / "vigil-import-bench" / f"{args.rows}.csv"
    if not path.exists():
        write_file(path, args.rows)
    rows = pl.scan_csv(path).select(pl.len()).collect().item()
    with fresh_database(args.database) as database:
        command = [str(Path(sys.executable).with_name("vigil")), "import", "events", str(path)]
        command += ["--database", database]
        command += [w for field, column in MAP.items() for w in ("--map", f"{field}={column}")]
        command += ["--default-type", "payment", "--default-channel", "pos"]
        command += ["--label-column", "TX_FRAUD"]
        name = make_url(database).query.get("application_name")
        server = ServerCpu(database, str(name)) if name else contextlib.nullcontext()
        began = time.perf_counter()
        # Synthetic data: the development privacy keys are fine (VIGIL_DEV allows them).
        env = {**os.environ, "VIGIL_DEV": "1"}
        with server:
            done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"import failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = child.ru_utime + child.ru_stime
    figures = {
        "database": make_url(database).get_backend_name(),
        "rows": rows,
        "imported": imported["rows_imported"],
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "cpu_seconds": round(cpu, 2),
        "rows_per_cpu_second": round(rows / cpu),
        "peak_rss_mb": round(child.ru_maxrss / 1024),
        "server_cpu_seconds": server.seconds if isinstance(server, ServerCpu) else None,
        "load": round(os.getloadavg()[0], 2),
        "file": str(path),
    }
    print(
        f"{rows:,} rows in {seconds:.1f} s ({cpu:.1f} s of CPU): {rows / seconds:,.0f} rows/s, "
        f"peak RSS {child.ru_maxrss / 1024:,.0f} MB, load {figures['load']}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
