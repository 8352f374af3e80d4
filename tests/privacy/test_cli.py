"""The privacy commands end to end on a SQLite file: forget, purge, rotate-key, audit verify."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from vigil.cli import app
from vigil.domain import Decision, Login, Reason, User
from vigil.storage import Store

T0 = datetime(2022, 1, 3, 10, tzinfo=UTC)


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def _seed(url: str) -> None:
    store = Store(url)
    store.init_schema()
    store.upsert_users([User(user_id="u-1", email="a@x.io"), User(user_id="u-2", email="b@x.io")])
    logins = [
        Login(event_id=f"l{i}", user_id=f"u-{1 + i % 2}", timestamp=T0 + timedelta(days=30 * i))
        for i in range(6)
    ]
    decisions = [
        Decision(
            decision_id=f"d{i}",
            event_id=e.event_id,
            event_kind="login",
            score=0.95,
            action="block",
            reasons=[Reason(code="new_country", score=0.95, detail="first login from GB")],
            event_time=e.timestamp,
            user_id=e.user_id,
        )
        for i, e in enumerate(logins)
    ]
    store.record(logins, decisions)
    store.close()


def test_privacy_commands(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    _seed(url)
    runner = CliRunner()

    forgot = runner.invoke(app, ["forget", "u-1", "--database", url])
    assert forgot.exit_code == 0, forgot.output
    figures = _last_json(forgot.output)
    assert figures["deleted"]["logins"] == 3 and figures["deleted"]["users"] == 1
    assert figures["pseudonymised"]["risk_events"] == 3

    purged = runner.invoke(
        app, ["purge", "--database", url, "--now", (T0 + timedelta(days=200)).isoformat()]
    )
    assert purged.exit_code == 0, purged.output
    assert _last_json(purged.output)["logins"] == 2  # u-2's logins at day 30 and 90
    bad = runner.invoke(app, ["purge", "--database", url, "--now", "2022-01-01T00:00:00"])
    assert bad.exit_code == 2 and "give a timezone" in bad.output

    verified = runner.invoke(app, ["audit", "verify", "--database", url])
    assert verified.exit_code == 0 and _last_json(verified.output)["checked"] == 6
    head = _last_json(verified.output)
    anchored = runner.invoke(
        app,
        ["audit", "verify", "--database", url, "--head", f"{head['head_seq']}:{head['head_hash']}"],
    )
    assert anchored.exit_code == 0, anchored.output

    new_key = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv(
        "VIGIL_PRIVACY__ENCRYPTION_KEYS", json.dumps({"dev": _dev_key(), "k2": new_key})
    )
    monkeypatch.setenv("VIGIL_PRIVACY__ENCRYPTION_KEY_ID", "k2")
    rotated = runner.invoke(app, ["privacy", "rotate-key", "--database", url])
    assert rotated.exit_code == 0, rotated.output
    assert _last_json(rotated.output) == {
        "key_id": "k2",
        "users": 1,
        "fields": 1,
        "from_keys": {"dev": 1},
    }


def _dev_key() -> str:
    from vigil.config import DEV_ENCRYPTION_KEY

    return DEV_ENCRYPTION_KEY


def test_purge_has_a_dry_run_and_takes_a_day_with_its_timezone(tmp_path) -> None:
    """Issue 18: purge deleted with no way to look first, and refused the zone it asked for."""
    url = f"sqlite:///{tmp_path / 'v.db'}"
    _seed(url)
    runner = CliRunner()
    before = Store(url).counts()

    dry = runner.invoke(app, ["purge", "--database", url, "--now", "2022-07-22Z", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    figures = _last_json(dry.output)
    assert figures["dry_run"] is True and figures["now"] == "2022-07-22T00:00:00+00:00"
    assert figures["logins"] == 4  # days 0, 30, 60 and 90: over 90 days before day 200
    assert "nothing deleted" in dry.output
    assert Store(url).counts() == before

    done = runner.invoke(app, ["purge", "--database", url, "--now", "2022-07-22Z"])
    assert done.exit_code == 0, done.output
    assert {k: v for k, v in _last_json(done.output).items() if k != "dry_run"} == {
        k: v for k, v in figures.items() if k != "dry_run"
    }
    assert Store(url).counts()["logins"] == before["logins"] - 4
    zoned = runner.invoke(app, ["purge", "--database", url, "--now", "2022-07-22+01:00"])
    assert _last_json(zoned.output)["now"] == "2022-07-21T23:00:00+00:00"
