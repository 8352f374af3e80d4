"""``vigil profiles rebuild``: every profile recomputed from the stored log.

Profiles are a cache of the event log (:mod:`vigil.profiles.recovery`). A shared store that was
lost or flushed (Redis keeps nothing on disk) is rebuilt by a server on its own when it finds it
empty; this command does it on purpose, for example after restoring the database from a
backup, or to drop profiles that drifted. In-process profiles are rebuilt and checkpointed
(refused while a server holds them).
"""

from __future__ import annotations

import time

import typer

from vigil.cli_common import DatabaseOpt
from vigil.cli_common import emit as _emit
from vigil.cli_common import settings as _settings
from vigil.cli_common import store as _store

app = typer.Typer(help="Profiles: the cache derived from the event log.", no_args_is_help=True)


@app.command("rebuild")
def rebuild_command(database: DatabaseOpt = None) -> None:
    """Recompute every profile from the stored events and their decisions, in log order."""
    from vigil.engine import Engine
    from vigil.profiles import MemoryProfileStore
    from vigil.profiles.holder import refuse_if_held
    from vigil.profiles.recovery import rebuild
    from vigil.profiles.store import open_profile_store
    from vigil.recorder import Recorder

    started = time.perf_counter()
    settings = _settings(database)
    store = _store(settings)
    profiles = open_profile_store(settings)
    if isinstance(profiles, MemoryProfileStore):
        refuse_if_held(store, "stop it first (it recovers from the log when it starts)")
    engine = Engine(store.load_reference(), profiles, Recorder(store), settings=settings)
    done = rebuild(engine, store)
    if isinstance(profiles, MemoryProfileStore):
        profiles.snapshot(store)
    typer.echo(f"rebuilt {len(profiles):,} profiles from {done.reapplied:,} stored events")
    _emit(
        {
            "profiles": len(profiles),
            "events": done.reapplied,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
