"""Commands: ``vigil forget``, ``purge``, ``audit verify`` and ``privacy rotate-key``.

Registered on the main app by :mod:`vigil.cli`; each prints its figures as a JSON last line.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli import console, err
from vigil.cli_common import DatabaseOpt
from vigil.cli_common import emit as _emit
from vigil.cli_common import settings as _settings
from vigil.cli_common import store as _store

audit_app = typer.Typer(help="The tamper-evident risk-event log.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy keys and contact data.", no_args_is_help=True)


def forget_command(
    user_id: Annotated[str, typer.Argument(help="The user to erase")],
    database: DatabaseOpt = None,
) -> None:
    """Erase a person's events, decisions, profiles and personal data; audit trail pseudonymised."""
    from vigil.privacy.erasure import forget
    from vigil.profiles.holder import refuse_if_held
    from vigil.profiles.store import open_profile_store

    settings = _settings(database)
    store = _store(settings)
    # A shared (Redis) store is reachable from here. An in-process one lives inside `serve`,
    # whose next checkpoint would write the person back: erase through it while it runs.
    live = open_profile_store(settings) if settings.profiles_url else None
    if live is None:
        refuse_if_held(
            store, f"erase through it (DELETE /v1/admin/users/{user_id}, an admin key) or stop it"
        )
    report = forget(store, user_id, profiles=live)
    if not report.found:
        raise ValueError(
            f"user_id: no data held on {user_id!r} (unknown, or forgotten already); nothing erased"
        )
    console.print(f"forgot [bold]{user_id}[/]; in the audit trail now {report.pseudonym}")
    _emit(report.as_dict())


def purge_command(
    database: DatabaseOpt = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="Purge relative to this instant (ISO 8601, e.g. 2023-06-01Z; default now)"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing")
    ] = False,
) -> None:
    """Delete events older than the retention policy (privacy.retention settings); --dry-run
    first to see how many."""
    from vigil.privacy.retention import RetentionPolicy, purge

    settings = _settings(database)
    at = _instant(now) if now else datetime.now(UTC)
    policy = RetentionPolicy.from_config(settings.privacy.retention)
    counts = purge(_store(settings), policy, at, dry_run=dry_run)
    done = "would be deleted (dry run: nothing deleted)" if dry_run else "deleted"
    console.print(", ".join(f"{n:,} {name}" for name, n in counts.items()) + f" {done}")
    _emit({"now": at.isoformat(), "dry_run": dry_run, **counts})


@audit_app.command("verify")
def audit_verify(
    database: DatabaseOpt = None,
    head: Annotated[
        str | None, typer.Option(help="SEQ:HASH from an earlier verify that must still hold")
    ] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(
            envvar="VIGIL_AUDIT_ANCHOR",
            help="Signed head file kept outside the database: the head it holds must still "
            "hold, and an intact walk records the new one (catches a truncated tail)",
        ),
    ] = None,
) -> None:
    """Walk the audit trail (the risk-event chain, the decision links and every batch's seal);
    exit 1 naming the first broken link."""
    from vigil.storage.anchor import Anchor, read_anchor, write_anchor
    from vigil.storage.audit import verify

    settings = _settings(database)
    store = _store(settings)
    key = settings.privacy.hmac_key.encode()
    expected = Anchor(_head(head))
    if head is None and anchor is not None:
        expected = read_anchor(anchor, key, settings.database_url) or expected
    report = verify(store, expect_head=expected.risk_events, expect_links=expected.decisions)
    if report.ok:
        kept = "keep it to check with --head later"
        heads = Anchor(
            None if report.head_seq is None else (report.head_seq, report.head_hash or ""),
            None
            if report.links_head_seq is None
            else (report.links_head_seq, report.links_head_hash or ""),
        )
        if anchor is not None and heads != (None, None):
            write_anchor(anchor, key, settings.database_url, heads)
            kept = f"signed into {anchor}"
        console.print(
            f"chain intact: {report.checked:,} risk events, {report.decisions_checked:,} "
            f"decisions in {report.links_head_seq or 0:,} batches; "
            f"head {report.head_seq}:{report.head_hash} ({kept})"
        )
    else:
        where = (
            f"decision link {report.broken_link_seq}"
            if report.broken_seq is None
            else f"seq {report.broken_seq} (risk_event_id {report.broken_risk_event_id})"
        )
        err.print(f"[red]chain broken[/] at {where}: {report.problem}")
    _emit(report.as_dict())
    if not report.ok:
        raise typer.Exit(code=1)


@privacy_app.command("init")
def privacy_init(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the keys to this new file (mode 0600)"),
    ] = None,
) -> None:
    """New privacy keys for a deployment (instead of the published development keys), as
    environment variables: put them in a secret store, never in version control."""
    import shlex

    from vigil.privacy.keys import new_keys

    keys = new_keys()
    text = "".join(f"{name}={shlex.quote(value)}\n" for name, value in keys.items())
    if out is None:
        typer.echo(text, nl=False)
    else:
        # Created 0600 from the start (no window with wider permissions); never overwritten.
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise typer.BadParameter(f"{out} exists; keys are never overwritten") from None
        with os.fdopen(fd, "w") as file:
            file.write(text)
        err.print(f"privacy keys written to {out} (mode 0600)")
    _emit({"key_id": keys["VIGIL_PRIVACY__ENCRYPTION_KEY_ID"], "file": str(out) if out else None})


@privacy_app.command("rotate-key")
def rotate_key(database: DatabaseOpt = None) -> None:
    """Re-encrypt all contact data under privacy.encryption_key_id."""
    from vigil.privacy.rotation import rotate_contact_key

    store = _store(_settings(database))
    figures = rotate_contact_key(store)
    console.print(
        f"re-encrypted {figures['fields']:,} fields of {figures['users']:,} users "
        f"under key {store.privacy.cipher.current!r}"
    )
    _emit({"key_id": store.privacy.cipher.current, **figures})


_DAY_IN_ZONE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:?\d{2})$")


def _instant(text: str) -> datetime:
    """An ISO 8601 instant with its timezone; a day with one (2023-06-01Z) is its midnight.

    >>> _instant("2023-06-01Z").isoformat(), _instant("2023-06-01+01:00").isoformat()
    ('2023-06-01T00:00:00+00:00', '2023-05-31T23:00:00+00:00')
    """
    day = _DAY_IN_ZONE.match(text.strip())
    try:
        value = datetime.fromisoformat(f"{day[1]}T00:00{day[2]}" if day else text.strip())
    except ValueError:
        raise typer.BadParameter(f"--now {text!r}: not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise typer.BadParameter(f"--now {text!r}: give a timezone, e.g. {text}Z")
    return value.astimezone(UTC)


def _head(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise typer.BadParameter(f"--head {text!r}: expected SEQ:HASH (a 64-digit hex hash)")
    return int(seq), digest
