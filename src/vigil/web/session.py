"""The workbench's session: a signed, expiring cookie naming the API key an analyst signed in with.

The cookie holds the key's id, name and roles, a CSRF token and the expiry, as base64url JSON
followed by an HMAC-SHA256 of it; never the key itself. It is HttpOnly, SameSite=Strict and, over
HTTPS, Secure. The signing secret is derived from the privacy HMAC key (so every ``serve``
worker of a deployment shares it, and a development key is as public as the cookie it signs).
A tampered, expired or malformed cookie is no session at all.

>>> signer = Signer(b"secret", lifetime=60, clock=lambda: 1000.0)
>>> session = signer.issue("k1", "ann", frozenset({Role.ANALYST}))
>>> signer.loads(signer.dumps(session)) == session
True
>>> signer.loads(signer.dumps(session) + "x") is None
True
>>> Signer(b"secret", lifetime=60, clock=lambda: 1061.0).loads(signer.dumps(session)) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from vigil.api.keys import Role

COOKIE = "vigil_session"
# A working day: an analyst signs in once a shift.
LIFETIME_SECONDS = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    name: str
    roles: frozenset[Role]
    csrf: str
    expires: float

    def may(self, role: Role) -> bool:
        return role in self.roles


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_from(hmac_key: str) -> bytes:
    """The cookie-signing secret, derived from the privacy HMAC key (one purpose, one key).

    >>> len(secret_from("k")), secret_from("k") != secret_from("j")
    (32, True)
    """
    return hmac.new(hmac_key.encode(), b"vigil workbench session", hashlib.sha256).digest()


class Signer:
    """Issues sessions and reads them back from their cookie value."""

    def __init__(
        self,
        secret: bytes,
        *,
        lifetime: float = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.lifetime = lifetime
        self._clock = clock

    def issue(self, key_id: str, name: str, roles: frozenset[Role]) -> Session:
        return Session(
            key_id=key_id,
            name=name,
            roles=roles,
            csrf=secrets.token_urlsafe(24),
            expires=self._clock() + self.lifetime,
        )

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        data = {
            "k": session.key_id,
            "n": session.name,
            "r": sorted(r.value for r in session.roles),
            "c": session.csrf,
            "e": session.expires,
        }
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def loads(self, value: str | None) -> Session | None:
        """The session in a cookie value; None if it is missing, forged or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(
                key_id=str(data["k"]),
                name=str(data["n"]),
                roles=frozenset(Role(r) for r in data["r"]),
                csrf=str(data["c"]),
                expires=float(data["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None
