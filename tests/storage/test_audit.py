"""The risk-event hash chain: written by Store.record, verified link by link, on both backends."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from vigil.storage import Store
from vigil.storage.audit import GENESIS, link, verify_chain


def _record(store: Store, make, start: int, n: int, *, flagged_every: int = 1) -> None:
    events = [
        make.tx(f"e{i:05d}", minutes=i, user_id=f"u-{i % 3}") for i in range(start, start + n)
    ]
    decisions = [
        make.decision(e, 0.95, "block", "amount_anomaly")
        if i % flagged_every == 0
        else make.decision(e, 0.0, "allow")
        for i, e in enumerate(events)
    ]
    store.record(events, decisions)


def _verify(store: Store, **kw):
    with store.engine.connect() as conn:
        return verify_chain(conn, store.tables.risk_events, store.privacy.pseudonyms, **kw)


def _chain(store: Store) -> list[tuple[int, str, str]]:
    r = store.tables.risk_events
    with store.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                r.select().with_only_columns(r.c.seq, r.c.prev_hash, r.c.hash).order_by(r.c.seq)
            )
        ]


def test_record_chains_every_risk_event_across_batches(store: Store, make) -> None:
    _record(store, make, 0, 10, flagged_every=2)
    _record(store, make, 10, 7)
    chain = _chain(store)
    assert [seq for seq, _, _ in chain] == list(range(1, 5 + 7 + 1))
    assert chain[0][1] == GENESIS
    assert all(chain[i][1] == chain[i - 1][2] for i in range(1, len(chain)))
    report = _verify(store)
    assert report.ok and report.checked == 12 and report.head_seq == 12
    assert report.head_hash == chain[-1][2]


def test_analyst_workflow_fields_are_outside_the_chain(store: Store, make) -> None:
    _record(store, make, 0, 3)
    rid = store.list_risk_events(limit=1)[0]["risk_event_id"]
    assert store.update_risk_event(
        rid, status="closed", analyst_label="fraud", action_taken="card blocked"
    )
    assert _verify(store).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("score", 0.5),
        ("action", "review"),
        ("reason_codes", "velocity"),
        ("user_id", "u-9"),
        ("event_id", "e-x"),
    ],
)
def test_editing_one_row_is_detected_and_named(store: Store, make, column: str, value) -> None:
    _record(store, make, 0, 6)
    r = store.tables.risk_events
    with store.transaction() as conn:
        conn.execute(update(r).where(r.c.seq == 4).values({column: value}))
    report = _verify(store)
    assert not report.ok
    assert report.broken_seq == 4 and report.checked == 3
    assert "seq 4) was altered" in report.problem


def test_deleting_or_rehashing_a_row_is_detected(store: Store, make) -> None:
    _record(store, make, 0, 6)
    r = store.tables.risk_events
    with store.transaction() as conn:
        conn.execute(delete(r).where(r.c.seq == 3))
    report = _verify(store)
    assert (report.broken_seq, report.problem) == (4, "seq 3 to 3 missing (deleted?)")

    # A forger who edits a row and recomputes its hash still breaks the next link.
    with store.transaction() as conn:
        conn.execute(delete(r).where(r.c.seq > 2))
    _record(store, make, 100, 3)
    row = store.list_risk_events(limit=10)[-1]  # the oldest: seq 1
    forged = {**row, "score": 0.1, "reason_codes": ",".join(row["reason_codes"])}
    with store.transaction() as conn:
        conn.execute(
            update(r)
            .where(r.c.seq == 1)
            .values(score=0.1, hash=link(forged, 1, GENESIS, store.privacy.pseudonyms))
        )
    report = _verify(store)
    assert (report.broken_seq, report.problem) == (2, "prev_hash is not the previous link's hash")


def test_an_anchored_head_must_still_be_there(store: Store, make) -> None:
    _record(store, make, 0, 4)
    head = _verify(store)
    _record(store, make, 10, 2)
    assert _verify(store, expect_head=(head.head_seq, head.head_hash)).ok
    r = store.tables.risk_events
    with store.transaction() as conn:  # truncating the tail is invisible to the chain alone...
        conn.execute(delete(r).where(r.c.seq >= 3))
    assert _verify(store).ok
    report = _verify(store, expect_head=(head.head_seq, head.head_hash))  # ...not to an anchor
    assert not report.ok and report.problem == "anchored seq 4 is gone"


def test_concurrent_writers_never_fork_the_chain(store: Store, make) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []
    # The month's partition exists first: creating it concurrently is a separate race.
    _record(store, make, 9000, 1)

    def writer(w: int) -> None:
        own = Store(url)
        try:
            for b in range(5):
                _record(own, make, w * 1000 + b * 10, 4)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify(store)
    assert report.ok and report.checked == 1 + 4 * 5 * 4 == report.head_seq


def test_audit_verify_command_exits_non_zero_on_a_broken_chain(tmp_path, make, monkeypatch) -> None:
    from vigil.cli import app

    url = f"sqlite:///{tmp_path / 'v.db'}"
    store = Store(url)
    store.init_schema()
    _record(store, make, 0, 3)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--database", url])
    assert ok.exit_code == 0, ok.output
    r = store.tables.risk_events
    with store.transaction() as conn:
        conn.execute(update(r).where(r.c.seq == 2).values(score=0.2))
    broken = runner.invoke(app, ["audit", "verify", "--database", url])
    assert broken.exit_code == 1
    assert '"broken_seq": 2' in broken.output.splitlines()[-1]
    bad = runner.invoke(app, ["audit", "verify", "--database", url, "--head", "nonsense"])
    assert bad.exit_code == 2 and "SEQ:HASH" in bad.output


def drop_log_positions(conn) -> None:
    """What a database from before version 3 lacks: the decisions' log positions."""
    from sqlalchemy import text

    conn.execute(text("DROP INDEX ux_decisions_seq"))
    conn.execute(text("ALTER TABLE decisions DROP COLUMN seq"))
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP SEQUENCE decisions_seq"))


def drop_case_workflow(conn) -> None:
    """What a database from before version 4 lacks: the case journal and the risk events'
    assignee and closing time."""
    from sqlalchemy import text

    conn.execute(text("DROP TABLE case_journal"))
    conn.execute(text("DROP INDEX ix_risk_events_status_time"))
    for column in ("assignee", "closed_at"):
        conn.execute(text(f"ALTER TABLE risk_events DROP COLUMN {column}"))


def drop_checkpoint_parts(conn) -> None:
    """What a database from before version 7 lacks: the profile a checkpoint under way wrote
    beside the current one."""
    from sqlalchemy import text

    conn.execute(text("DROP INDEX ix_profiles_pending_position"))
    for column in ("pending", "pending_position"):
        conn.execute(text(f"ALTER TABLE profiles DROP COLUMN {column}"))


def drop_sealed_batches(conn) -> None:
    """What a database from before version 5 lacks: the decisions' batches and their links,
    the risk events' link format and erased columns."""
    from sqlalchemy import text

    conn.execute(text("DROP TABLE decision_links"))
    conn.execute(text("DROP INDEX ix_decisions_batch"))
    conn.execute(text("ALTER TABLE decisions DROP COLUMN batch"))
    for column in ("link_format", "erased"):
        conn.execute(text(f"ALTER TABLE risk_events DROP COLUMN {column}"))


def test_v1_databases_are_upgraded_and_their_risk_events_chained(store: Store, make) -> None:
    from sqlalchemy import text

    _record(store, make, 0, 3)
    # Make it look like a version 1 database: no chain columns, narrow contact columns.
    with store.transaction() as conn:
        drop_checkpoint_parts(conn)
        drop_sealed_batches(conn)
        conn.execute(text("DROP INDEX ux_risk_events_seq"))
        for column in ("seq", "prev_hash", "hash"):
            conn.execute(text(f"ALTER TABLE risk_events DROP COLUMN {column}"))
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE users ALTER COLUMN address TYPE VARCHAR(500)"))
        drop_log_positions(conn)
        drop_case_workflow(conn)
        conn.execute(text("DROP TABLE alembic_version"))  # it came with Alembic, after version 3
        conn.execute(text("DELETE FROM schema_version"))
        conn.execute(text("INSERT INTO schema_version VALUES (1, '2022-01-01 00:00:00')"))
    store.init_schema()
    report = _verify(store)
    assert report.ok and report.checked == 3
    _record(store, make, 10, 2)
    assert _verify(store).checked == 5
    from vigil.domain import User

    store.upsert_users([User(user_id="u-1", address="x" * 500)])  # ciphertext fits
    assert store.load_reference().users["u-1"].address == "x" * 500


def test_a_signed_anchor_file_catches_a_truncated_tail_without_head(
    tmp_path, make, monkeypatch
) -> None:
    """Issue 18: deleting the newest risk event was detected only with --head."""
    from vigil.cli import app

    url = f"sqlite:///{tmp_path / 'v.db'}"
    store = Store(url)
    store.init_schema()
    _record(store, make, 0, 3)
    anchor = tmp_path / "anchor" / "audit-head.json"
    monkeypatch.setenv("VIGIL_AUDIT_ANCHOR", str(anchor))
    runner = CliRunner()
    first = runner.invoke(app, ["audit", "verify", "--database", url])
    assert first.exit_code == 0, first.output
    assert json.loads(anchor.read_text())["seq"] == 3
    _record(store, make, 10, 2)
    grown = runner.invoke(app, ["audit", "verify", "--database", url])
    assert grown.exit_code == 0, grown.output
    assert json.loads(anchor.read_text())["seq"] == 5

    r = store.tables.risk_events
    with store.transaction() as conn:  # the newest risk event goes: the chain alone holds
        conn.execute(delete(r).where(r.c.seq == 5))
    cut = runner.invoke(app, ["audit", "verify", "--database", url])
    assert cut.exit_code == 1
    assert json.loads(cut.output.splitlines()[-1])["problem"] == "anchored seq 5 is gone"

    forged = json.loads(anchor.read_text())
    anchor.write_text(json.dumps({**forged, "seq": 4}))  # moving the anchor back is seen
    refused = runner.invoke(app, ["audit", "verify", "--database", url])
    assert refused.exit_code == 2 and "signature does not match" in refused.output


def test_changing_or_deleting_a_flagged_decision_is_caught(store: Store, make) -> None:
    """Issue 18: changing a row of decisions directly was not detected."""
    from vigil.storage.audit import verify

    _record(store, make, 0, 3)
    assert verify(store).ok
    d = store.tables.decisions
    [second] = [r["decision_id"] for r in store.list_risk_events() if r["seq"] == 2]
    with store.transaction() as conn:  # the block becomes an allow, in decisions only
        conn.execute(update(d).where(d.c.decision_id == second).values(action="allow", score=0.1))
    report = verify(store)
    assert (report.ok, report.broken_seq) == (False, 2)
    assert (
        report.problem == f"decision {second} of risk event {report.broken_risk_event_id} "
        "was altered: it no longer matches"
    )
    # Deleting it is refused by the database itself (a foreign key from risk_events); were the
    # key dropped first, verify would say the decision "is gone".
    with pytest.raises(IntegrityError), store.transaction() as conn:
        conn.execute(delete(d).where(d.c.decision_id == second))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "block"),
        ("score", 0.5),
        ("user_id", "u-9"),
        ("reasons", [{"code": "velocity", "score": 0.9, "detail": "made up"}]),
        ("model_versions", {"policy": "2"}),
        ("seq", 999),
    ],
)
def test_changing_a_decision_that_flagged_nothing_is_caught(
    store: Store, make, column: str, value
) -> None:
    """Issue 18: decisions that flagged nothing were not chained at all."""
    from vigil.storage.audit import verify

    _record(store, make, 0, 6, flagged_every=3)
    assert verify(store).ok
    d = store.tables.decisions
    with store.transaction() as conn:
        conn.execute(update(d).where(d.c.decision_id == "d-e00001").values({column: value}))
    report = verify(store)
    assert not report.ok and "seal does not match" in report.problem
    assert report.broken_link_seq == 1


def test_deleting_or_adding_a_decision_that_flagged_nothing_is_caught(store: Store, make) -> None:
    from vigil.storage.audit import verify

    _record(store, make, 0, 4, flagged_every=4)
    _record(store, make, 10, 4, flagged_every=4)
    report = verify(store)
    assert report.ok and report.decisions_checked == 8 and report.links_head_seq == 2
    d = store.tables.decisions
    with store.transaction() as conn:
        conn.execute(delete(d).where(d.c.decision_id == "d-e00012"))
    report = verify(store)
    assert (report.ok, report.broken_link_seq) == (False, 2)

    with store.transaction() as conn:  # put back, and a forged one beside it
        forged = make.decision(make.tx("e-forged"), 0.0, "allow")
        from vigil.storage import rows as R

        row = R.decision_row(forged, transaction_id=None, terminal_id=None, created_at=R.utc_now())
        conn.execute(d.insert(), {**row, "seq": 500, "batch": None})
    assert verify(store).problem == "decision d-e-forged is not chained"


def test_a_signed_anchor_catches_the_newest_batch_of_decisions_deleted(
    tmp_path, make, monkeypatch
) -> None:
    """Issue 18: truncating decisions must show without being told the head."""
    from vigil.cli import app

    url = f"sqlite:///{tmp_path / 'v.db'}"
    store = Store(url)
    store.init_schema()
    _record(store, make, 0, 3, flagged_every=3)
    quiet = [make.tx(f"e{i:05d}", minutes=i) for i in range(10, 13)]
    store.record(quiet, [make.decision(e, 0.0, "allow") for e in quiet])  # flags nothing
    monkeypatch.setenv("VIGIL_AUDIT_ANCHOR", str(tmp_path / "audit-head.json"))
    runner = CliRunner()
    first = runner.invoke(app, ["audit", "verify", "--database", url])
    assert first.exit_code == 0, first.output
    assert "6 decisions" in first.output
    with store.transaction() as conn:  # the newest batch goes, decisions and all
        conn.execute(text("DELETE FROM decisions WHERE decision_id LIKE 'd-e0001%'"))
        conn.execute(text("DELETE FROM decision_links WHERE seq = 2"))
    cut = runner.invoke(app, ["audit", "verify", "--database", url])
    assert cut.exit_code == 1, cut.output
    assert json.loads(cut.output.splitlines()[-1])["problem"] == "anchored decision link 2 is gone"
