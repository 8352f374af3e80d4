"""vigil query over profiles stored by a real Store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX
from vigil.query import genome_frame, profiles_frame, run_named

IN, OUT = CATEGORY_INDEX["transfer_in"], CATEGORY_INDEX["transfer"]


def _account(inflows: list[float], outflows: list[float], group: str = "NG") -> bytes:
    """An account's profile as the engine leaves it: windows, statistics and flow genome
    (money in from NG, out to GB), counted in its holder's country's peer group."""
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
        p.record_flow("NG", "credit", int(amount * 100), i * 60.0, group=group)
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
        p.record_flow("GB", "debit", int(amount * 100), t, group=group)
    return p.to_bytes()


def _rows():
    rows = [("account", f"a-{i}", _account([100.0 * (i + 1)], [50.0 + i])) for i in range(30)]
    rows.append(("account", "mule", _account([300.0] * 15, [4000.0])))
    # Five big senders of another country: their own group, too small to judge anyone by.
    rows += [("account", f"gh-{i}", _account([10.0], [9000.0], group="GH")) for i in range(5)]
    return rows


def test_named_queries_answer_the_genome_questions(store) -> None:
    store.save_profiles(_rows())
    rows = list(store.load_profiles())
    frame, genome = profiles_frame(rows), genome_frame(rows)
    top = run_named("top-inflow", frame, {"limit": 2})
    assert top["key"].to_list() == ["mule", "a-29"]
    assert top["transfer_in_sum_30d"].to_list() == [4500.0, 3000.0]
    above = run_named("above-peer-p99", frame, {"min_group": 10}, genome=genome)
    # Debits to GB of the NG accounts: means 50..79 and 4000; only the mule's is above the
    # 99th percentile. The GH senders (9,000 each) are in a group of 5, below min_group.
    assert above["key"].to_list() == ["mule"]
    row = above.row(0, named=True)
    assert (row["peer_group"], row["counterparty_country"], row["direction"]) == (
        "NG",
        "GB",
        "debit",
    )
    assert row["mean"] == 4000.0 and row["n"] == 1 and row["group_size"] == 31
    # Money in from NG: the mule's 300s are ordinary beside 100..3,000; nobody has 3 debits.
    credit = {"min_group": 10, "direction": "credit"}
    assert run_named("above-peer-p99", frame, credit, genome=genome)["key"].to_list() == ["a-29"]
    assert (
        run_named("above-peer-p99", frame, {"min_n": 3, "direction": "any"}, genome=genome)[
            "key"
        ].to_list()
        == []
    )
    with pytest.raises(ValueError, match="direction: 'up'"):
        run_named("above-peer-p99", frame, {"direction": "up"}, genome=genome)
    # Peer-group profiles are state, not entities: not rows of the profiles table.
    peer = Profile()
    assert profiles_frame([("peer", "NG", peer.to_bytes())]).is_empty()


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
    assert json.loads(result.output) == [{"n": 36}]
    result = runner.invoke(
        app, ["query", "above-peer-p99", "-p", "min_group=10", "--json", "-d", url]
    )
    assert result.exit_code == 0, result.output
    assert [r["key"] for r in json.loads(result.output)] == ["mule"]
    sql = "select count(*) as n from genome where direction = 'debit'"
    result = runner.invoke(app, ["query", "--sql", sql, "--json", "-d", url])
    assert json.loads(result.output) == [{"n": 36}]
    result = runner.invoke(app, ["query", "top-inflow", "-p", "bogus=1", "-d", url])
    assert result.exit_code != 0 and "bogus" in result.output
