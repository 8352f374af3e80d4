"""``vigil replay`` killed with SIGKILL mid-run, then run again, ends exactly where an
uninterrupted replay ends: the same decisions on every event, byte-identical profiles.

A real ``vigil replay`` process over a generated bank (about 11,800 events); the kill comes
once its first chunk is committed, while it decides the next one.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vigil.cli import app

VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("bank")
    generated = CliRunner().invoke(
        app, ["generate", "--out", str(out), "--cards", "300", "--days", "20"]
    )
    assert generated.exit_code == 0, generated.output
    return out


def _replay(bank: Path, db: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.Popen(
        [
            *VIGIL,
            "replay",
            str(bank / "events.parquet"),
            "--bank",
            str(bank),
            "--feedback",
            str(bank / "feedback.csv"),
            "--database",
            f"sqlite:///{db}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finished(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    output = process.communicate(timeout=600)[0].decode()
    assert process.returncode == 0, output[-3000:]
    return json.loads(output.strip().splitlines()[-1])


def _decisions(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def _state(db: Path) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[str, str], bytes]]:
    with sqlite3.connect(db) as conn:
        decisions = {
            row[0]: row[1:]
            for row in conn.execute("SELECT event_id, action, score, reasons FROM decisions")
        }
        profiles = {
            (kind, key): data
            for kind, key, data in conn.execute("SELECT kind, key, data FROM profiles")
        }
    return decisions, profiles


def test_a_replay_killed_mid_run_and_run_again_ends_as_an_uninterrupted_one(
    bank: Path, tmp_path: Path
) -> None:
    whole = _finished(_replay(bank, tmp_path / "whole.db"))

    interrupted = tmp_path / "interrupted.db"
    first = _replay(bank, interrupted)
    deadline = time.monotonic() + 300
    while _decisions(interrupted) < 5_000 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the replay ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    done_before = _decisions(interrupted)
    assert 0 < done_before < whole["events"]

    rerun = _finished(_replay(bank, interrupted))
    assert rerun["duplicates"] == done_before
    assert rerun["events"] + done_before == whole["events"]

    decisions, profiles = _state(tmp_path / "whole.db")
    again, again_profiles = _state(interrupted)
    assert again == decisions
    assert again_profiles.keys() == profiles.keys()
    differing = [key for key in profiles if again_profiles[key] != profiles[key]]
    assert not differing, f"{len(differing)} of {len(profiles)} profiles differ"
