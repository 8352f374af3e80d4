"""The audit chains' heads, kept outside the database and signed: truncation shows without
``--head``.

A hash chain cannot show its newest links being deleted (nothing follows them). An anchor file,
written by ``vigil audit verify --anchor FILE`` after each intact walk and read by the next one,
holds the heads (``seq``, ``hash``) it saw of the risk-event chain and of the decision links,
signed with an HMAC under a key derived from the privacy HMAC key: someone with write access to
the database alone can neither rewrite either chain's tail unnoticed nor forge a new anchor.
Keep the file where the database's administrators cannot write (the host that runs the check,
or its own volume), and run the check on a schedule (cron, a Kubernetes CronJob). A file
written before the decisions were chained (it holds the risk-event head alone) is still read.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit-head.json"
>>> write_anchor(path, b"k", "sqlite:///v.db", Anchor((12, "ab" * 32), (3, "cd" * 32)))
>>> read_anchor(path, b"k", "sqlite:///v.db").decisions
(3, 'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd')
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
from typing import Any, NamedTuple

from vigil.files import replace_file

_PURPOSE = b"vigil audit anchor v1"

Head = tuple[int, str]


class AnchorError(ValueError):
    """An anchor file that cannot be trusted: unreadable, altered, or another database's."""


class Anchor(NamedTuple):
    """The anchored heads: of the risk-event chain and of the decision links (None: empty, or
    not anchored yet)."""

    risk_events: Head | None
    decisions: Head | None = None


def _key(hmac_key: bytes) -> bytes:
    # A key of its own, derived: the anchor's signature never doubles as a pseudonym.
    return hmac.new(hmac_key, _PURPOSE, hashlib.sha256).digest()


def _database(url: str) -> str:
    """Which database an anchor is for, without its password (a hash of the URL)."""
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def _signature(hmac_key: bytes, database: str, anchor: Anchor) -> str:
    risk, decisions = anchor
    # A file with the risk-event head alone is signed as before the decisions were chained.
    parts = [database, *(("", "") if risk is None else (str(risk[0]), risk[1]))]
    if decisions is not None:
        parts += ["decisions", str(decisions[0]), decisions[1]]
    message = "\n".join(parts).encode()
    return hmac.new(_key(hmac_key), message, hashlib.sha256).hexdigest()


def write_anchor(path: Path, hmac_key: bytes, url: str, anchor: Anchor) -> None:
    """Record ``anchor``, the heads of ``url``'s database, in ``path`` (atomically)."""
    database = _database(url)
    risk, decisions = anchor
    document: dict[str, Any] = {
        "database": database,
        "seq": None if risk is None else risk[0],
        "hash": None if risk is None else risk[1],
    }
    if decisions is not None:
        document["decisions"] = {"seq": decisions[0], "hash": decisions[1]}
    document["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    document["signature"] = _signature(hmac_key, database, anchor)
    replace_file(path, json.dumps(document, indent=2) + "\n")


def read_anchor(path: Path, hmac_key: bytes, url: str) -> Anchor | None:
    """The heads anchored for ``url``'s database; None when there is no file yet."""
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        database, signature = document["database"], str(document["signature"])
        anchor = Anchor(_head(document), _head(document.get("decisions")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorError(f"{path}: not an anchor file ({exc})") from None
    if not hmac.compare_digest(signature, _signature(hmac_key, database, anchor)):
        raise AnchorError(f"{path}: signature does not match (altered, or another key)")
    if database != _database(url):
        raise AnchorError(f"{path}: the anchor of another database")
    return anchor


def _head(part: Any) -> Head | None:
    if part is None or part["seq"] is None:
        return None
    return int(part["seq"]), str(part["hash"])
