"""``vigil consume`` when NATS goes away: a real NATS server of the test's own, killed.

A worker cut off from NATS cannot renew its partition leases, so once they may lapse it stops
deciding those partitions (another worker may own them by then: two owners would decide a
card's events out of order) and takes them again when NATS is back. A worker whose connection
does not come back within ``stream.reconnect_seconds`` exits with status 1, saying so, for its
supervisor to restart; it never spins on a dead connection.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bank40 import seed, withdrawal
from tests.stream.test_consume import _env, _metric, _publish, _wait, _worker
from vigil.storage import Store


class NatsServer:
    """A NATS server with JetStream on a free port, started and killed by the test."""

    def __init__(self, binary: str, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.command = [
            binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(directory),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nats-server is not installed (.ci/run installs it)")
        pytest.skip("nats-server is not installed")
    server = NatsServer(binary, tmp_path / "jetstream")
    server.start()
    yield server
    server.kill()


def _stopped(worker: subprocess.Popen[bytes]) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.communicate(timeout=30)[0].decode()
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0].decode() + "\n(killed: it did not stop on SIGTERM)"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_worker_that_loses_nats_for_good_exits_and_says_so(
    store: Store, own_nats: NatsServer
) -> None:
    seed(store)
    env = _env(store, own_nats.url, 1, None) | {"VIGIL_STREAM__RECONNECT_SECONDS": "2"}
    worker = _worker(env, 19491)
    try:
        _wait(lambda: _metric(19491, "vigil_stream_partitions") == 1, 60, "the partition taken")
        own_nats.kill()
        started = time.monotonic()
        _wait(lambda: worker.poll() is not None, 30, "the worker to exit")
        exited_after = time.monotonic() - started
    finally:
        output = _stopped(worker)
        print(output[-3000:])
    assert worker.returncode == 1
    assert "stream.reconnect_seconds" in output.splitlines()[-1]
    assert exited_after < 20


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_worker_cut_off_from_nats_gives_its_partition_up_then_takes_it_again(
    store: Store, own_nats: NatsServer
) -> None:
    seed(store)
    worker = _worker(_env(store, own_nats.url, 1, None), 19492)
    try:
        _wait(lambda: _metric(19492, "vigil_stream_partitions") == 1, 60, "the partition taken")
        asyncio.run(_publish(1, [withdrawal(i, "a") for i in range(50)], url=own_nats.url))
        _wait(lambda: store.counts()["decisions"] == 50, 30, "the first events decided")
        own_nats.kill()
        # Its lease (3 s) may lapse while NATS is away: the worker must stop deciding first.
        started = time.monotonic()
        _wait(lambda: _metric(19492, "vigil_stream_partitions") == 0, 10, "the partition given up")
        assert time.monotonic() - started < 3
        own_nats.start()
        _wait(lambda: _metric(19492, "vigil_stream_partitions") == 1, 60, "the partition again")
        asyncio.run(_publish(1, [withdrawal(i, "b") for i in range(50)], url=own_nats.url))
        _wait(lambda: store.counts()["decisions"] == 100, 60, "the later events decided")
    finally:
        output = _stopped(worker)
        print(output[-3000:])
    assert worker.returncode == 0, output[-3000:]
