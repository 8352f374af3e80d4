"""A decision the database refuses at commit time fails its own request, never its neighbours.

Requests decided in the same moment share one group commit. The database is made to refuse
one event's decision for real (a trigger), so the writer splits the batch until that decision
stands alone: its request gets a 503 it may retry, the others are committed and answered, and
the in-process profiles, which had counted the refused event, are rebuilt from the log.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.api.conftest import make_app, seed, tx
from vigil.profiles import MemoryProfileStore
from vigil.storage import Store

REFUSED = "refused-by-the-database"


def _refuse(store: Store, event_id: str) -> None:
    with store.transaction() as conn:
        if store.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON decisions "
                    f"WHEN NEW.event_id = '{event_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.event_id = '{event_id}' THEN "
                    "RAISE unique_violation USING MESSAGE = 'refused by a test trigger'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON decisions "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )


async def _send_together(app: Any, key: str, events: list[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://vigil") as client,
    ):
        headers = {"X-API-Key": key}
        return await asyncio.gather(
            *(client.post("/v1/transactions", json=e, headers=headers) for e in events)
        )


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_refused_row_fails_alone_and_the_profiles_forget_it(store: Store) -> None:
    seed(store)
    _refuse(store, REFUSED)
    # A long gathering window, so that all the requests share one commit.
    app = make_app(store, group_commit_ms=200)
    key = app.state.keys.create("ingest", ["ingest"])[0]
    events = [tx(f"n-{i}", minute=i) for i in range(20)]
    events.insert(7, tx(REFUSED, minute=30))
    answers = asyncio.run(_send_together(app, key, events))

    by_id = {e["event_id"]: a for e, a in zip(events, answers, strict=True)}
    assert by_id[REFUSED].status_code == 503
    assert by_id[REFUSED].headers["retry-after"] == "1"
    assert REFUSED in by_id[REFUSED].json()["detail"]
    others = [a for i, a in by_id.items() if i != REFUSED]
    assert [a.status_code for a in others] == [200] * 20
    stored = store.get_decisions(list(by_id))
    assert set(stored) == set(by_id) - {REFUSED}
    assert all(stored[i].decision_id == by_id[i].json()["decision_id"] for i in stored)

    # The profiles (checkpointed as the app stopped) count what the log holds: the refused
    # event, which they had counted when it was decided, was taken back out.
    profiles = MemoryProfileStore()
    profiles.restore(store)
    assert profiles.get("card", "c-1").n == 20
