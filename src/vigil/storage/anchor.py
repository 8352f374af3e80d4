"""The audit chain's head, kept outside the database and signed: truncation shows without
``--head``.

The hash chain cannot show its newest risk events being deleted (nothing follows them). An
anchor file, written by ``vigil audit verify --anchor FILE`` after each intact walk and read by
the next one, holds the head (``seq``, ``hash``) it saw, signed with an HMAC under a key derived
from the privacy HMAC key: someone with write access to the database alone can neither rewrite
the chain's tail unnoticed nor forge a new anchor. Keep the file where the database's
administrators cannot write (the host that runs the check, or its own volume), and run the
check on a schedule (cron, a Kubernetes CronJob).

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit-head.json"
>>> write_anchor(path, b"k", "sqlite:///v.db", 12, "ab" * 32)
>>> read_anchor(path, b"k", "sqlite:///v.db")
(12, 'abababababababababababababababababababababababababababababababab')
>>> read_anchor(path, b"other key", "sqlite:///v.db")
Traceback (most recent call last):
...
vigil.storage.anchor.AnchorError: ...audit-head.json: signature does not match (altered, or ...)
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

from vigil.files import replace_file

_PURPOSE = b"vigil audit anchor v1"


class AnchorError(ValueError):
    """An anchor file that cannot be trusted: unreadable, altered, or another database's."""


def _key(hmac_key: bytes) -> bytes:
    # A key of its own, derived: the anchor's signature never doubles as a pseudonym.
    return hmac.new(hmac_key, _PURPOSE, hashlib.sha256).digest()


def _database(url: str) -> str:
    """Which database an anchor is for, without its password (a hash of the URL)."""
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def _signature(hmac_key: bytes, database: str, seq: int, head: str) -> str:
    message = f"{database}\n{seq}\n{head}".encode()
    return hmac.new(_key(hmac_key), message, hashlib.sha256).hexdigest()


def write_anchor(path: Path, hmac_key: bytes, url: str, seq: int, head: str) -> None:
    """Record ``seq``:``head`` of the chain in ``url``'s database as the anchor (atomically)."""
    database = _database(url)
    document = {
        "database": database,
        "seq": seq,
        "hash": head,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "signature": _signature(hmac_key, database, seq, head),
    }
    replace_file(path, json.dumps(document, indent=2) + "\n")


def read_anchor(path: Path, hmac_key: bytes, url: str) -> tuple[int, str] | None:
    """The anchored ``(seq, hash)`` for ``url``'s database; None when there is no file yet."""
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        database, seq, head = document["database"], int(document["seq"]), str(document["hash"])
        signature = str(document["signature"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"{path}: not an anchor file ({exc})") from None
    if not hmac.compare_digest(signature, _signature(hmac_key, database, seq, head)):
        raise AnchorError(f"{path}: signature does not match (altered, or another key)")
    if database != _database(url):
        raise AnchorError(f"{path}: the anchor of another database")
    return seq, head
