"""Key rotation for contact data: re-encrypt every user's contact fields under the current key.

Add the new key to ``privacy.encryption_keys``, make it ``privacy.encryption_key_id``, run
``vigil privacy rotate-key``; when it reports nothing left under the old key, remove the old
key. Rows still in plaintext (written before encryption existed) are encrypted on the way.

>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> rotate_contact_key(store)
{'users': 0, 'fields': 0, 'from_keys': {}}
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from vigil.privacy.contact import CONTACT_FIELDS

if TYPE_CHECKING:
    from vigil.storage import Store

_PAGE = 1000


def rotate_contact_key(store: Store) -> dict[str, Any]:
    """Re-encrypt what is not under the current key, in one transaction; what it changed."""
    cipher = store.privacy.cipher
    users = store.tables.users
    columns = [users.c[name] for name in CONTACT_FIELDS]
    from_keys: Counter[str] = Counter()
    changed_users = changed_fields = 0
    with store.transaction() as conn:
        rows = conn.execute(select(users.c.user_id, *columns).order_by(users.c.user_id)).all()
        for row in rows:
            values = {}
            for name in CONTACT_FIELDS:
                value = getattr(row, name)
                if value is None:
                    continue
                old = cipher.key_id(value) if cipher.is_sealed(value) else "plaintext"
                if old == cipher.current:
                    continue
                values[name] = cipher.reseal(value, f"{row.user_id}/{name}")
                from_keys[old] += 1
            if values:
                conn.execute(update(users).where(users.c.user_id == row.user_id).values(values))
                changed_users += 1
                changed_fields += len(values)
    return {"users": changed_users, "fields": changed_fields, "from_keys": dict(from_keys)}
