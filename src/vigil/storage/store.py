"""The Store: reference data, events, decisions, risk events and profile snapshots in SQL.

One class serves both backends; the differences (partitions, idempotent-insert syntax, how a
row count comes back, SQLite pragmas) stay inside it.

>>> import tempfile
>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Transaction
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/vigil.db")
>>> store.init_schema()
>>> tx = Transaction(event_id="e1", transaction_id="t1", card_id="c-1", type="withdrawal",
...                  timestamp=datetime(2022, 1, 3, 10, tzinfo=UTC), amount="2500.00")
>>> store.record([tx], [Decision(decision_id="d1", event_id="e1", event_kind="transaction",
...                              score=0.95, action="block", card_id="c-1")])
>>> store.get_decision("e1").action, store.counts()["risk_events"]
(<Action.BLOCK: 'block'>, 1)
>>> store.close()
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from vigil.domain.decisions import Action, Decision
from vigil.domain.entities import Bank, Card, Terminal, User
from vigil.domain.events import Feedback, FeedbackLabel, Login, Phase, Transaction
from vigil.privacy.keys import PrivacyKeys
from vigil.storage import audit
from vigil.storage import log as event_log
from vigil.storage import rows as R
from vigil.storage.bulk import copy_insert, sqlite_insert
from vigil.storage.partitions import MonthlyPartitions
from vigil.storage.reference import ReferenceData
from vigil.storage.schema import build_tables

if TYPE_CHECKING:
    import polars as pl


def _shadow_rows(decision: Decision) -> list[dict[str, Any]]:
    """Rows of ``rule_shadow_hits`` for a decision's shadow-rule hits (vigil.rules)."""
    return [
        {
            "decision_id": decision.decision_id,
            "event_id": decision.event_id,
            "event_time": decision.event_time,
            "rule": hit.code,
            "score": hit.score,
            "detail": hit.detail,
            "action": decision.action.value,
        }
        for hit in decision.shadow
    ]


_CHUNK = 5_000
# decision_frame columns derived from the stored reasons rather than read as they are.
_DECISION_COLUMNS: dict[str, Callable[[Any, str], Any]] = {
    "reason_codes": lambda row, _: R.reason_codes(row.reasons),
    "evidence": lambda row, _: R.reason_evidence(row.reasons),
}
_IN_CHUNK = 500
_MAX_LIMIT = 10_000


def normalise_url(url: str) -> str:
    """Accept ``sqlite:///path.db`` and ``postgresql://...``; PostgreSQL goes through psycopg 3.

    >>> normalise_url("postgresql://postgres@127.0.0.1:5432/test")
    'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    >>> normalise_url("sqlite:///vigil.db")
    'sqlite:///vigil.db'
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValueError(f"url: cannot parse database URL {url!r}: {exc}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(f"url: PostgreSQL is used through psycopg 3, not {driver!r}")
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite" or driver not in ("", "pysqlite"):
        raise ValueError(f"url: {parsed.drivername!r} is not supported; use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def _sqlite_engine(url: str, echo: bool, *, inline_checkpoints: bool = True) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo)

    # pysqlite's own transaction handling skips BEGIN before DDL and breaks SAVEPOINT; take it
    # over so every Store.transaction is one real SQLite transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Each decision adds to a dozen B-tree indexes at places its random ids scatter; with
        # SQLite's default 2 MiB page cache most of those pages are read again from the OS
        # for every batch. 64 MiB (taken only as used) cuts a batch's insert time by a fifth.
        cursor.execute("PRAGMA cache_size=-65536")
        if not inline_checkpoints:  # Store.checkpoint_wal, called by the owner, does them
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    # A write unit (Store.transaction) takes the write lock as it begins, waiting for it up to
    # the busy timeout. Begun deferred, it would read first and, if another process (the
    # server's writer) committed meanwhile, fail at its first write with "database is locked"
    # at once, without waiting: SQLite cannot upgrade a read snapshot that is out of date.
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_UNIT, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_WRITE_UNIT = "vigil_write_unit"


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``itertools.batched`` arrived in Python 3.12; vigil supports 3.11."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _need(items: Iterable[Any], cls: type, what: str) -> list[Any]:
    out = list(items)
    for i, item in enumerate(out):
        if not isinstance(item, cls):
            raise TypeError(f"{what}[{i}]: expected {cls.__name__}, got {type(item).__name__}")
    return out


def _by_key(
    rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any], keep: str
) -> list[dict[str, Any]]:
    """Drop rows repeating a key; ``keep`` "first" for idempotent inserts, "last" for upserts."""
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        k = key(row)
        if keep == "last" or k not in out:
            out[k] = row
    return list(out.values())


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field}: naive datetime {value.isoformat()}; give a timezone (UTC)")
    return value


class Store:
    """SQL storage for vigil on a SQLite file (default) or PostgreSQL.

    Every writer takes an optional ``conn`` from :meth:`transaction` to join a larger atomic
    unit; without one it runs in its own transaction.

    >>> store = Store("sqlite://")
    >>> store.dialect
    'sqlite'
    >>> Store("postgresql://u@db/vigil").url
    'postgresql+psycopg://u@db/vigil'
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        privacy: PrivacyKeys | None = None,
        inline_checkpoints: bool = True,
    ) -> None:
        """``inline_checkpoints=False`` (SQLite): commits never copy the write-ahead log into
        the database file themselves, the caller runs :meth:`checkpoint_wal` instead, so that
        work stays off the commits' latency (the server's writer does, from a thread)."""
        self.url = normalise_url(url)
        # IPs and devices are pseudonymised and contact data encrypted on the way in, whoever
        # writes (the engine, an import); without explicit keys, the configured ones.
        self.privacy = privacy or PrivacyKeys.from_settings()
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url, echo, inline_checkpoints=inline_checkpoints)
            self._partitions: MonthlyPartitions | None = None
        else:
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True)
            self._partitions = MonthlyPartitions()
        self.tables = build_tables(self.dialect)

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- schema ------------------------------------------------------------------------------

    def init_schema(self) -> None:
        """Create the schema, or bring the database's to this vigil's version; idempotent.

        Schema changes are Alembic revisions (:mod:`vigil.storage.migrations`, which
        ``vigil db upgrade`` runs too): an empty database gets today's tables at once, an older
        one its missing revisions, all in one transaction.
        """
        from vigil.storage import migrations

        migrations.upgrade(self)

    def checkpoint_wal(self) -> None:
        """Copy what SQLite's write-ahead log holds into the database file, as far as readers
        allow, without blocking writers (a passive checkpoint). Nothing to do on PostgreSQL."""
        if self.dialect == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def drop_all(self) -> None:
        """Drop every vigil table (partitions go with their parent) and Alembic's record of the
        schema. For tests and resets."""
        from vigil.storage.migrations import VERSION_TABLE

        with self.transaction() as conn:
            self.tables.metadata.drop_all(conn, checkfirst=True)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
        if self._partitions is not None:
            self._partitions.forget()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit: everything executed on the yielded connection commits or none does."""
        with self.engine.connect().execution_options(**{_WRITE_UNIT: True}) as conn:
            if self._partitions is not None:
                self._partitions.begin(conn)
            committed = False
            try:
                with conn.begin():
                    yield conn
                committed = True
            finally:
                if self._partitions is not None:
                    self._partitions.end(conn, committed)

    @contextmanager
    def _joined(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    def _pseudonymised(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows, changed in place, with IPs, devices and card numbers pseudonymised: every
        row that may carry one passes here on its way in."""
        pseudonymise = self.privacy.pseudonyms.row
        return [pseudonymise(row) for row in rows]

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        key = [c.name for c in table.primary_key]
        rows = _by_key(rows, lambda r: tuple(r[k] for k in key), keep="last")
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key},
        )
        conn.execute(stmt, rows)
        return len(rows)

    def insert_new(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        """Insert rows of an event table (rows as :mod:`vigil.storage.rows` makes them) whose
        event_id is not stored yet, inside ``conn``'s transaction; returns how many went in.
        The bulk importers call it too, so their rows take the same path (COPY, partitions)."""
        if not rows:
            return 0
        rows = _by_key(rows, lambda r: r["event_id"], keep="first")
        self.ensure_partitions(conn, table, (r["timestamp"] for r in rows))
        if self.dialect == "postgresql":
            return copy_insert(conn, table, rows, skip_existing=True)
        return sqlite_insert(conn, table, rows, skip_existing=True)

    def ensure_partitions(self, conn: Connection, table: Table, times: Iterable[datetime]) -> None:
        """Create the monthly partitions rows of ``table`` at ``times`` need (PostgreSQL's event
        tables; nothing otherwise), inside ``conn``'s transaction: what :meth:`insert_new` does
        first, for a bulk importer that writes its rows its own way (a Polars frame by COPY)."""
        if self._partitions is not None and table.name in ("transactions", "logins"):
            self._partitions.ensure(conn, table.name, times)

    def _insert_all(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows that must all be new: a clash raises IntegrityError."""
        if not rows:
            return
        if self.dialect == "postgresql":
            copy_insert(conn, table, rows, skip_existing=False)
        else:
            sqlite_insert(conn, table, rows, skip_existing=False)

    # -- reference data -------------------------------------------------------------------------

    def upsert_banks(self, banks: Iterable[Bank], conn: Connection | None = None) -> int:
        rows = [R.bank_row(b) for b in _need(banks, Bank, "banks")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.banks, rows)

    def upsert_terminals(
        self, terminals: Iterable[Terminal], conn: Connection | None = None
    ) -> int:
        rows = [R.terminal_row(t) for t in _need(terminals, Terminal, "terminals")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.terminals, rows)

    def upsert_cards(self, cards: Iterable[Card], conn: Connection | None = None) -> int:
        rows = self._pseudonymised(R.card_row(card) for card in _need(cards, Card, "cards"))
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.cards, rows)

    def upsert_users(self, users: Iterable[User], conn: Connection | None = None) -> int:
        seal = self.privacy.cipher.seal_user
        rows = [seal(R.user_row(u)) for u in _need(users, User, "users")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.users, rows)

    def load_reference(self) -> ReferenceData:
        """Every bank, terminal, card and user, keyed by id."""
        t = self.tables
        with self.engine.connect() as conn:
            return ReferenceData(
                banks={r.code: R.bank_from_row(r._mapping) for r in conn.execute(select(t.banks))},
                terminals={
                    r.terminal_id: R.terminal_from_row(r._mapping)
                    for r in conn.execute(select(t.terminals))
                },
                cards={
                    r.card_id: R.card_from_row(r._mapping) for r in conn.execute(select(t.cards))
                },
                users={
                    r.user_id: R.user_from_row(self.privacy.cipher.open_user(r._mapping))
                    for r in conn.execute(select(t.users))
                },
            )

    # -- events ---------------------------------------------------------------------------------

    def insert_transactions(
        self, txs: Sequence[Transaction], conn: Connection | None = None
    ) -> int:
        """Insert transactions; an event_id already stored is skipped. Returns rows inserted."""
        rows = self._pseudonymised(
            R.transaction_row(tx) for tx in _need(txs, Transaction, "transactions")
        )
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.transactions, rows)

    def insert_logins(self, logins: Sequence[Login], conn: Connection | None = None) -> int:
        """Insert logins; an event_id already stored is skipped. Returns rows inserted."""
        rows = self._pseudonymised(R.login_row(lg) for lg in _need(logins, Login, "logins"))
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.logins, rows)

    def insert_feedback(self, items: Sequence[Feedback], conn: Connection | None = None) -> int:
        """Insert feedback; an event_id already stored is skipped. Returns rows inserted.

        Notes are free text: card numbers, IPs and e-mail addresses typed into them are stored
        as their pseudonyms (:meth:`vigil.privacy.Pseudonymiser.text`), never in clear."""
        rows = [R.feedback_row(f) for f in _need(items, Feedback, "feedback")]
        for row in rows:
            if row.get("note"):
                row["note"] = self.privacy.pseudonyms.text(row["note"])
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.feedback, rows)

    def load_feedback(self, target_event_id: str | None = None) -> list[Feedback]:
        """Feedback in timestamp order, all of it or only on one event."""
        t = self.tables.feedback
        query = select(t).order_by(t.c.timestamp, t.c.event_id)
        if target_event_id is not None:
            query = query.where(t.c.target_event_id == target_event_id)
        with self.engine.connect() as conn:
            return [R.feedback_from_row(r._mapping) for r in conn.execute(query)]

    def terminal_history(
        self, start: datetime
    ) -> tuple[list[tuple[datetime, str, str]], list[tuple[datetime, str]]]:
        """What terminal risk is fed, since ``start``: the completed transactions at a terminal
        as ``(timestamp, event_id, terminal_id)`` and the fraud labels as ``(timestamp,
        target_event_id)``, each in time order (a restarted engine rebuilds it from these)."""
        _aware(start, "start")
        tx, fb = self.tables.transactions, self.tables.feedback
        completed = (
            select(tx.c.timestamp, tx.c.event_id, tx.c.terminal_id)
            .where(tx.c.timestamp >= start, tx.c.terminal_id.is_not(None))
            .where(tx.c.phase != Phase.START.value)
            .order_by(tx.c.timestamp, tx.c.event_id)
        )
        frauds = (
            select(fb.c.timestamp, fb.c.target_event_id)
            .where(fb.c.timestamp >= start, fb.c.label == FeedbackLabel.FRAUD.value)
            .order_by(fb.c.timestamp, fb.c.event_id)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(completed)], [
                tuple(r) for r in conn.execute(frauds)
            ]

    def iter_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        batch_size: int = _CHUNK,
    ) -> Iterator[Transaction | Login]:
        """Transactions and logins with ``start <= timestamp < end``, in (timestamp, event_id)
        order, read in batches so memory stays flat however many events are stored."""
        _aware(start, "start")
        _aware(end, "end")
        streams = []
        with self.engine.connect() as conn:
            for table, convert in (
                (self.tables.transactions, R.transaction_from_row),
                (self.tables.logins, R.login_from_row),
            ):
                query = select(table).order_by(table.c.timestamp, table.c.event_id)
                if start is not None:
                    query = query.where(table.c.timestamp >= start)
                if end is not None:
                    query = query.where(table.c.timestamp < end)
                result = conn.execute(query.execution_options(yield_per=batch_size))
                streams.append(map(convert, result.mappings()))
            yield from heapq.merge(*streams, key=lambda e: (e.timestamp, e.event_id))

    # -- decisions ------------------------------------------------------------------------------

    def record(
        self,
        events: Sequence[Transaction | Login],
        decisions: Sequence[Decision],
        conn: Connection | None = None,
    ) -> None:
        """Store a processed batch in one transaction: its events (already stored ones are
        skipped), its decisions, sealed as one batch, and a risk event for every flagged
        decision (:mod:`vigil.storage.audit`)."""
        txs: list[Transaction] = []
        logins: list[Login] = []
        context: dict[str, tuple[str | None, str | None]] = {}
        for i, ev in enumerate(events):
            if isinstance(ev, Transaction):
                txs.append(ev)
                context[ev.event_id] = (ev.transaction_id, ev.terminal_id)
            elif isinstance(ev, Login):
                logins.append(ev)
                context[ev.event_id] = (None, None)
            else:
                got = type(ev).__name__
                raise TypeError(f"events[{i}]: expected Transaction or Login, got {got}")
        now = R.utc_now()
        decision_rows = []
        risk_rows = []
        shadow_rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, d in enumerate(_need(decisions, Decision, "decisions")):
            if d.event_id in seen:
                raise ValueError(f"decisions[{i}].event_id: {d.event_id!r} decided twice in batch")
            seen.add(d.event_id)
            transaction_id, terminal_id = context.get(d.event_id, (None, None))
            decision_rows.append(
                R.decision_row(
                    d, transaction_id=transaction_id, terminal_id=terminal_id, created_at=now
                )
            )
            if d.flagged:
                risk_rows.append(R.risk_event_row(d, updated_at=now))
            shadow_rows.extend(_shadow_rows(d))
        # The engine's decisions carry a token already; any other caller's are made to.
        self._pseudonymised(decision_rows)
        self._pseudonymised(risk_rows)
        pseudonyms = self.privacy.pseudonyms
        with self._joined(conn) as c:
            self.insert_transactions(txs, c)
            self.insert_logins(logins, c)
            positions = event_log.next_positions(c, self, len(decision_rows))
            for row, seq in zip(decision_rows, positions, strict=True):
                row["seq"] = seq
            sealed = audit.prepare_batch(decision_rows, pseudonyms) if decision_rows else None
            self._insert_all(c, self.tables.decisions, decision_rows)
            self._insert_all(c, self.tables.rule_shadow_hits, shadow_rows)
            # The audit appends come last: on PostgreSQL their lock is held until commit.
            audit.chain(c, self.tables.risk_events, risk_rows, pseudonyms)
            self._insert_all(c, self.tables.risk_events, risk_rows)
            if sealed is not None:
                audit.append_link(c, self.tables.decision_links, sealed)

    def get_decision(self, event_id: str) -> Decision | None:
        return self.get_decisions([event_id]).get(event_id)

    def get_decision_by_id(self, decision_id: str) -> Decision | None:
        """The decision with this decision id (the id the API returns), if any."""
        t = self.tables.decisions
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.decision_id == decision_id)).first()
        return None if row is None else R.decision_from_row(row._mapping)

    def get_decisions(self, event_ids: Sequence[str]) -> dict[str, Decision]:
        """Decisions on these events, by event id; events never decided are absent."""
        t = self.tables.decisions
        out: dict[str, Decision] = {}
        with self.engine.connect() as conn:
            for chunk in batched(dict.fromkeys(event_ids), _IN_CHUNK):
                for r in conn.execute(select(t).where(t.c.event_id.in_(chunk))):
                    out[r.event_id] = R.decision_from_row(r._mapping)
        return out

    def latest_decision_time(self) -> datetime | None:
        """The latest event time among recorded decisions (None when there are none)."""
        t = self.tables.decisions
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.c.event_time))).scalar_one_or_none()

    def decision_frame(self) -> pl.DataFrame:
        """Every decision as a Polars frame in (event_time, event_id) order, for evaluation.

        ``unit_id`` is the evaluation unit: the transaction id when there is one, else the
        event id; ``reason_codes`` lists the codes of the decision's reasons.
        """
        import polars as pl

        t = self.tables.decisions
        names = [
            "event_id",
            "transaction_id",
            "unit_id",
            "event_kind",
            "event_time",
            "score",
            "action",
            "reason_codes",
            "evidence",
            "user_id",
            "card_id",
            "terminal_id",
            "latency_us",
        ]
        query = select(
            t.c.event_id,
            t.c.transaction_id,
            func.coalesce(t.c.transaction_id, t.c.event_id).label("unit_id"),
            t.c.event_kind,
            t.c.event_time,
            t.c.score,
            t.c.action,
            t.c.reasons,
            t.c.user_id,
            t.c.card_id,
            t.c.terminal_id,
            t.c.latency_us,
        ).order_by(t.c.event_time, t.c.event_id)
        columns: dict[str, list[Any]] = {n: [] for n in names}
        with self.engine.connect() as conn:
            for r in conn.execute(query.execution_options(yield_per=_CHUNK)):
                for n in names:
                    columns[n].append(_DECISION_COLUMNS.get(n, getattr)(r, n))
        schema = {
            "event_id": pl.String,
            "transaction_id": pl.String,
            "unit_id": pl.String,
            "event_kind": pl.String,
            "event_time": pl.Datetime("us", "UTC"),
            "score": pl.Float64,
            "action": pl.String,
            "reason_codes": pl.List(pl.String),
            "evidence": pl.List(pl.String),
            "user_id": pl.String,
            "card_id": pl.String,
            "terminal_id": pl.String,
            "latency_us": pl.Float64,
        }
        return pl.DataFrame(columns, schema=schema)

    def list_risk_events(
        self,
        *,
        user_id: str | None = None,
        card_id: str | None = None,
        action: Action | str | None = None,
        reason: str | Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        assignee: str | None = None,
        by_score: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Risk events newest first (by event time, then id; ``by_score``: highest score
        first, then newest), filtered and paginated.

        ``reason`` matches one reason code exactly (several: every one of them, a pattern);
        ``since`` is inclusive, ``until`` exclusive;
        ``status`` (one, or any of several) and ``assignee`` match exactly (the case workflow,
        vigil.storage.cases).
        Each dict has the risk_events columns, with ``reason_codes`` as a list.
        """
        if not 0 < limit <= _MAX_LIMIT:
            raise ValueError(f"limit: {limit} must be between 1 and {_MAX_LIMIT}")
        if offset < 0:
            raise ValueError(f"offset: {offset} must not be negative")
        t = self.tables.risk_events
        query = select(t)
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if card_id is not None:
            query = query.where(t.c.card_id == self.privacy.pseudonyms.card(card_id))
        if action is not None:
            try:
                query = query.where(t.c.action == Action(action).value)
            except ValueError:
                valid = ", ".join(a.value for a in Action)
                raise ValueError(f"action: {action!r} is not one of {valid}") from None
        padded = literal(",") + t.c.reason_codes + literal(",")
        for code in [reason] if isinstance(reason, str) else reason or ():
            query = query.where(padded.contains(f",{code},", autoescape=True))
        if _aware(since, "since") is not None:
            query = query.where(t.c.event_time >= since)
        if _aware(until, "until") is not None:
            query = query.where(t.c.event_time < until)
        if isinstance(status, str):
            query = query.where(t.c.status == status)
        elif status is not None:
            query = query.where(t.c.status.in_(list(status)))
        if assignee is not None:
            query = query.where(t.c.assignee == assignee)
        newest = (t.c.event_time.desc(), t.c.risk_event_id.desc())
        query = query.order_by(t.c.score.desc(), *newest) if by_score else query.order_by(*newest)
        with self.engine.connect() as conn:
            result = conn.execute(query.limit(limit).offset(offset))
            out = []
            for r in result:
                item = dict(r._mapping)
                codes = item["reason_codes"]
                item["reason_codes"] = codes.split(",") if codes else []
                out.append(item)
            return out

    def update_risk_event(
        self,
        risk_event_id: int,
        *,
        status: str | None = None,
        analyst_label: str | None = None,
        action_taken: str | None = None,
        conn: Connection | None = None,
    ) -> bool:
        """Set an analyst's status, label or action on a risk event; False if it does not exist."""
        t = self.tables.risk_events
        values: dict[str, Any] = {}
        for name, value, size in (
            ("status", status, 16),
            ("analyst_label", analyst_label, 32),
            ("action_taken", action_taken, 64),
        ):
            if value is None:
                continue
            if not 0 < len(value) <= size:
                raise ValueError(f"{name}: {value!r} must be 1 to {size} characters")
            values[name] = value
        if not values:
            raise ValueError("status, analyst_label or action_taken: give at least one")
        values["updated_at"] = R.utc_now()
        with self._joined(conn) as c:
            result = c.execute(t.update().where(t.c.risk_event_id == risk_event_id).values(values))
            return result.rowcount == 1

    # -- rule versions and shadow hits (vigil.rules) -------------------------------------------

    def activate_rules(
        self, content: str, sha256: str, *, path: str | None, source: str
    ) -> tuple[int, bool]:
        """Record a rule file put in force: ``(version, True)`` for a new version, or
        ``(version in force, False)`` when its sha256 is the one in force already."""
        t = self.tables.rule_versions
        latest_query = select(t.c.version, t.c.sha256).order_by(t.c.version.desc()).limit(1)
        for attempt in range(3):
            try:
                with self.transaction() as conn:
                    latest = conn.execute(latest_query).first()
                    if latest is not None and latest.sha256 == sha256:
                        return latest.version, False
                    version = 1 if latest is None else latest.version + 1
                    row = {
                        "version": version,
                        "sha256": sha256,
                        "content": content,
                        "path": path,
                        "source": source[:200],
                        "activated_at": R.utc_now(),
                    }
                    conn.execute(t.insert(), row)
                return version, True
            except IntegrityError:
                # Another process took this version number first; read again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def rule_versions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest rule versions put in force, newest first (content included)."""
        t = self.tables.rule_versions
        with self.engine.connect() as conn:
            query = select(t).order_by(t.c.version.desc()).limit(limit)
            return [dict(r._mapping) for r in conn.execute(query)]

    def rule_shadow_hits(self, rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Hits of shadow rules (``rule`` is its code, ``rule:<name>``), newest first."""
        t = self.tables.rule_shadow_hits
        query = select(t).order_by(t.c.event_time.desc(), t.c.hit_id.desc()).limit(limit)
        if rule is not None:
            query = query.where(t.c.rule == rule)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- API keys (rows hold the argon2 hash of the secret, never the secret) ---------------------

    def insert_api_key(self, row: dict[str, Any], conn: Connection | None = None) -> None:
        """Store a new key's row (key_id, name, roles, secret_hash, created_at)."""
        with self._joined(conn) as c:
            c.execute(self.tables.api_keys.insert(), row)

    def get_api_key(self, key_id: str) -> dict[str, Any] | None:
        t = self.tables.api_keys
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.key_id == key_id)).first()
        return None if row is None else dict(row._mapping)

    def list_api_keys(self) -> list[dict[str, Any]]:
        """Every key's row, oldest first, revoked ones included."""
        t = self.tables.api_keys
        with self.engine.connect() as conn:
            query = select(t).order_by(t.c.created_at, t.c.key_id)
            return [dict(r._mapping) for r in conn.execute(query)]

    def revoke_api_key(self, key_id: str, conn: Connection | None = None) -> bool:
        """Mark a key revoked; False if there is no such key or it was revoked already."""
        t = self.tables.api_keys
        query = (
            t.update()
            .where(t.c.key_id == key_id, t.c.revoked_at.is_(None))
            .values(revoked_at=R.utc_now())
        )
        with self._joined(conn) as c:
            return c.execute(query).rowcount == 1

    # -- model scores and StandIn inferences (vigil.models) ------------------------------------

    def upsert_profile_scores(
        self, kind: str, rows: Iterable[dict[str, Any]], conn: Connection | None = None
    ) -> int:
        """Replace the batch scores of users or cards (``kind`` "user" or "card"); rows are
        ``{<kind>_id, score, model_version, score_timestamp}``. Returns rows written."""
        table = self._scores_table(kind)
        written = 0
        with self._joined(conn) as c:
            for chunk in batched(rows, _CHUNK):
                for row in chunk:
                    _aware(row["score_timestamp"], "score_timestamp")
                written += self._upsert(c, table, self._pseudonymised(dict(r) for r in chunk))
        return written

    def profile_scores(self, kind: str, ids: Sequence[str]) -> dict[str, tuple[float, str]]:
        """``{id: (score, model_version)}`` for the ids that have a score (a card asked for by
        its number is found under its token)."""
        table = self._scores_table(kind)
        key = table.c[f"{kind}_id"]
        stored = {self.privacy.pseudonyms.card(i) if kind == "card" else i: i for i in ids}
        out: dict[str, tuple[float, str]] = {}
        with self.engine.connect() as conn:
            for chunk in batched(stored, _IN_CHUNK):
                query = select(key, table.c.score, table.c.model_version).where(key.in_(chunk))
                for entity, score, version in conn.execute(query):
                    out[stored[entity]] = (score, version)
        return out

    def _scores_table(self, kind: str) -> Table:
        if kind not in ("user", "card"):
            raise ValueError(f"kind: {kind!r} is not user or card")
        return (
            self.tables.user_profile_scores if kind == "user" else self.tables.card_profile_scores
        )

    def log_standin(self, rows: Sequence[dict[str, Any]], conn: Connection | None = None) -> None:
        """Append StandIn inference rows (the ``standin_inferences`` columns but the id)."""
        with self._joined(conn) as c:
            self._insert_all(
                c, self.tables.standin_inferences, self._pseudonymised(dict(r) for r in rows)
            )

    def standin_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest StandIn inferences, newest first."""
        t = self.tables.standin_inferences
        query = select(t).order_by(t.c.inference_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- daily user and card aggregates (vigil.features) ------------------------------------------

    def save_aggregated_features(
        self, kind: str, rows: Iterable[dict[str, Any]], conn: Connection | None = None
    ) -> int:
        """Upsert daily snapshot rows of ``user_aggregated_features`` or
        ``card_aggregated_features`` (``kind`` "user" or "card"); returns rows written."""
        table = self._aggregates_table(kind)
        written = 0
        with self._joined(conn) as c:
            for chunk in batched(rows, _CHUNK):
                written += self._upsert(c, table, self._pseudonymised(dict(r) for r in chunk))
        return written

    def aggregated_features(self, kind: str, day: date) -> list[dict[str, Any]]:
        """Every user's or card's snapshot row for ``day``."""
        table = self._aggregates_table(kind)
        query = select(table).where(table.c.agg_reference_date == day).order_by(*table.primary_key)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _aggregates_table(self, kind: str) -> Table:
        if kind not in ("user", "card"):
            raise ValueError(f"kind: {kind!r} is not user or card")
        t = self.tables
        return t.user_aggregated_features if kind == "user" else t.card_aggregated_features

    # -- profile snapshots ------------------------------------------------------------------------

    def save_profiles(
        self,
        rows: Iterable[tuple[str, str, bytes]],
        state: dict | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Upsert ``(kind, key, data)`` rows and the snapshot state in one transaction (the
        caller's, when given).

        ``rows`` may be a generator of any length; it is written in chunks. Returns rows written.
        """
        t = self.tables
        written = 0
        now = R.utc_now()
        with self._joined(conn) as conn:
            for chunk in batched(rows, _CHUNK):
                records = []
                for kind, key, data in chunk:
                    if not isinstance(kind, str) or not isinstance(key, str):
                        raise TypeError(f"kind/key: expected str, got {kind!r}, {key!r}")
                    if not isinstance(data, bytes | bytearray | memoryview):
                        raise TypeError(f"data: expected bytes for {kind}/{key}")
                    records.append(
                        {"kind": kind, "key": key, "data": bytes(data), "updated_at": now}
                    )
                written += self._upsert(conn, t.profiles, records)
            if state is not None:
                self._upsert(
                    conn, t.profile_state, [{"name": "snapshot", "value": state, "updated_at": now}]
                )
        return written

    def load_profiles(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored profile as ``(kind, key, data)``, streamed in (kind, key) order."""
        t = self.tables.profiles
        query = select(t.c.kind, t.c.key, t.c.data).order_by(t.c.kind, t.c.key)
        with self.engine.connect() as conn:
            for kind, key, data in conn.execute(query.execution_options(yield_per=_CHUNK)):
                yield kind, key, bytes(data)

    def load_profile_state(self, name: str = "snapshot") -> dict | None:
        """A named profile state: by default the one saved with the newest checkpoint (its
        log position); ``"holder"``, the server keeping profiles in process, if any."""
        t = self.tables.profile_state
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.value).where(t.c.name == name)).scalar()

    def save_profile_state(self, name: str, value: dict | None) -> None:
        """Set a named profile state (None removes it)."""
        t = self.tables.profile_state
        with self.transaction() as conn:
            if value is None:
                conn.execute(t.delete().where(t.c.name == name))
            else:
                row = {"name": name, "value": value, "updated_at": R.utc_now()}
                self._upsert(conn, t, [row])

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        with self.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in self.tables.metadata.tables.items()
                if name != "schema_version"
            }
