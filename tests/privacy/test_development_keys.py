"""The published development privacy keys: refused where personal data comes in, unless this is
a development setup; ``vigil privacy init`` makes real ones."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.config import PrivacyConfig
from vigil.privacy import PrivacyKeys

runner = CliRunner()

PERSONAL_DATA = (
    ["serve"],
    ["consume"],
    ["import", "events", "nowhere.csv"],
    ["import", "bank", "nowhere"],
    ["replay", "nowhere.csv"],
)


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No development setup, no keys set: the defaults, i.e. the development keys."""
    monkeypatch.delenv("VIGIL_DEV", raising=False)
    for name in list(os.environ):
        if name.startswith("VIGIL_PRIVACY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.db'}")
    # Were a command not refused, it would end at once: no server, no NATS to wait for.
    monkeypatch.setattr("uvicorn.run", lambda app, **options: None)
    monkeypatch.setenv("VIGIL_STREAM__NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("command", PERSONAL_DATA, ids=" ".join)
def test_personal_data_is_refused_with_the_development_keys(command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"error: vigil {command[0]} refused: the privacy keys are the published")
    assert "vigil privacy init" in line and "VIGIL_PRIVACY__HMAC_KEY" in line and "--dev" in line


@pytest.mark.usefixtures("production")
def test_a_development_setup_is_said_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append(app))
    assert runner.invoke(app, ["serve"]).exit_code == 2
    assert not served
    result = runner.invoke(app, ["--dev", "serve"])
    assert result.exit_code == 0, result.output
    assert len(served) == 1 and os.environ["VIGIL_DEV"] == "1"


@pytest.mark.usefixtures("production")
def test_privacy_init_makes_keys_that_serve_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    printed = runner.invoke(app, ["privacy", "init"])
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    variables = dict(line.split("=", 1) for line in lines[:-1])
    assert sorted(variables) == [
        "VIGIL_PRIVACY__ENCRYPTION_KEYS",
        "VIGIL_PRIVACY__ENCRYPTION_KEY_ID",
        "VIGIL_PRIVACY__HMAC_KEY",
    ]
    key_id = json.loads(lines[-1])["key_id"]
    assert variables["VIGIL_PRIVACY__ENCRYPTION_KEY_ID"] == key_id
    contact = json.loads(variables["VIGIL_PRIVACY__ENCRYPTION_KEYS"].strip("'"))
    assert len(variables["VIGIL_PRIVACY__HMAC_KEY"]) == 64
    config = PrivacyConfig(
        hmac_key=variables["VIGIL_PRIVACY__HMAC_KEY"],
        encryption_keys=contact,
        encryption_key_id=key_id,
    )
    assert PrivacyKeys.from_config(config).uses_development_keys is False
    # Two runs never give the same keys.
    again = runner.invoke(app, ["privacy", "init"]).output
    assert variables["VIGIL_PRIVACY__HMAC_KEY"] not in again

    saved = tmp_path / "keys.env"
    assert runner.invoke(app, ["privacy", "init", "-o", str(saved)]).exit_code == 0
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert runner.invoke(app, ["privacy", "init", "-o", str(saved)]).exit_code == 2

    for name, value in variables.items():
        monkeypatch.setenv(name, value.strip("'"))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
