"""vigil query over profiles stored by a real Store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vigil.cli import app
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX
from vigil.query import profiles_frame, run_named

IN, OUT = CATEGORY_INDEX["transfer_in"], CATEGORY_INDEX["transfer"]


def _account(inflows: list[float], outflows: list[float]) -> bytes:
    p = Profile()
    for i, amount in enumerate(inflows):
        p.advance(i * 60.0)
        p.record_transaction(
            i * 60.0,
            i * 60.0,
            IN,
            int(amount * 100),
            place=None,
            latitude=None,
            longitude=None,
            attributes=(("country", "NG"),),
        )
    for i, amount in enumerate(outflows):
        t = 3600.0 + i * 60.0
        p.advance(t)
        p.record_transaction(
            t,
            t,
            OUT,
            int(amount * 100),
            place=None,
            latitude=None,
            longitude=None,
            attributes=(("country", "NG"),),
        )
    return p.to_bytes()


def _rows():
    rows = [("account", f"a-{i}", _account([100.0 * (i + 1)], [50.0 + i])) for i in range(30)]
    rows.append(("account", "mule", _account([300.0] * 15, [4000.0])))
    return rows


def test_named_queries_answer_the_genome_questions(store) -> None:
    store.save_profiles(_rows())
    frame = profiles_frame(store.load_profiles())
    top = run_named("top-inflow", frame, {"limit": 2})
    assert top["key"].to_list() == ["mule", "a-29"]
    assert top["transfer_in_sum_30d"].to_list() == [4500.0, 3000.0]
    above = run_named("above-peer-p99", frame, {"min_group": 10})
    # Outgoing means 50..79 and 4000: only the mule's is above the 99th percentile.
    assert above["key"].to_list() == ["mule"]


def test_cli_query_named_sql_and_errors(tmp_path) -> None:
    from vigil.storage import Store

    url = f"sqlite:///{tmp_path / 'q.db'}"
    store = Store(url)
    store.init_schema()
    store.save_profiles(_rows())
    runner = CliRunner()
    result = runner.invoke(app, ["query", "top-inflow", "-p", "limit=1", "--json", "-d", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["key"] == "mule"
    result = runner.invoke(
        app, ["query", "--sql", "select count(*) as n from profiles", "--json", "-d", url]
    )
    assert json.loads(result.output) == [{"n": 31}]
    result = runner.invoke(app, ["query", "top-inflow", "-p", "bogus=1", "-d", url])
    assert result.exit_code != 0 and "bogus" in result.output
