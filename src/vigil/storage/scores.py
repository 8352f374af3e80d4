"""Batch model scores of users and cards (:mod:`vigil.models`), one current score each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select

from vigil.storage.database import CHUNK, IN_CHUNK, Database, aware, batched


class ScoreStore(Database):
    """The ``user_profile_scores`` and ``card_profile_scores`` tables: a new score replaces the
    entity's old one.

    >>> from datetime import datetime, UTC
    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> at = datetime(2022, 1, 1, tzinfo=UTC)
    >>> store.upsert_profile_scores("user", [{"user_id": "u-1", "score": 0.3,
    ...                                        "model_version": "m1", "score_timestamp": at}])
    1
    >>> store.profile_scores("user", ["u-1", "u-2"])
    {'u-1': (0.3, 'm1')}
    """

    def upsert_profile_scores(
        self, kind: str, rows: Iterable[dict[str, Any]], conn: Connection | None = None
    ) -> int:
        """Replace the batch scores of users or cards (``kind`` "user" or "card"); rows are
        ``{<kind>_id, score, model_version, score_timestamp}``. Returns rows written."""
        table = self._scores_table(kind)
        written = 0
        with self._joined(conn) as c:
            for chunk in batched(rows, CHUNK):
                for row in chunk:
                    aware(row["score_timestamp"], "score_timestamp")
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
            for chunk in batched(stored, IN_CHUNK):
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
