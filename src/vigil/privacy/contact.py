"""Contact data (a user's email, phone, address) encrypted at rest with AES-256-GCM.

A ciphertext is ``enc:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``: the key id lets an old
key decrypt what it encrypted while new writes use the current key, and a rotation re-encrypts
everything under the current key (``vigil privacy rotate-key``). The associated data binds each
ciphertext to its user and field, so one user's email cannot be copied onto another's row.

>>> import base64
>>> key = base64.b64encode(bytes(32)).decode()
>>> cipher = ContactCipher({"k1": key}, "k1")
>>> sealed = cipher.encrypt("ada@example.com", "u-1/email")
>>> sealed.startswith("enc:k1:"), cipher.decrypt(sealed, "u-1/email")
(True, 'ada@example.com')
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CONTACT_FIELDS = ("email", "phone", "address")
_PREFIX = "enc:"
_NONCE = 12


class ContactCipher:
    """AES-GCM under keys named by id; ``current`` encrypts, any known key decrypts.

    >>> import base64
    >>> old, new = (base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2))
    >>> sealed = ContactCipher({"old": old}, "old").encrypt("+234 800", "u-1/phone")
    >>> rotated = ContactCipher({"old": old, "new": new}, "new")
    >>> rotated.key_id(sealed), rotated.key_id(rotated.reseal(sealed, "u-1/phone"))
    ('old', 'new')
    """

    def __init__(self, keys: Mapping[str, str | bytes], current: str) -> None:
        self._keys: dict[str, AESGCM] = {}
        self._raw: dict[str, bytes] = {}
        for key_id, key in keys.items():
            if not key_id or ":" in key_id:
                raise ValueError(
                    f"privacy.encryption_keys: key id {key_id!r} must be non-empty, no ':'"
                )
            raw = key if isinstance(key, bytes) else _decode_key(key, key_id)
            if len(raw) != 32:
                raise ValueError(
                    f"privacy.encryption_keys.{key_id}: {len(raw)} bytes; AES-256 needs 32 "
                    "(give them base64-encoded)"
                )
            self._keys[key_id] = AESGCM(raw)
            self._raw[key_id] = raw
        if current not in self._keys:
            known = ", ".join(sorted(self._keys)) or "none"
            raise ValueError(f"privacy.encryption_key_id: {current!r} is not a known key ({known})")
        self.current = current

    def __reduce__(self) -> tuple[type[ContactCipher], tuple[dict[str, bytes], str]]:
        # AESGCM objects do not pickle; the key bytes do (to the server's own writer process).
        return ContactCipher, (self._raw, self.current)

    @staticmethod
    def is_sealed(value: str | None) -> bool:
        return value is not None and value.startswith(_PREFIX)

    @staticmethod
    def key_id(sealed: str) -> str:
        return sealed[len(_PREFIX) :].split(":", 1)[0]

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(_NONCE)
        body = self._keys[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"{_PREFIX}{self.current}:{base64.urlsafe_b64encode(nonce + body).decode()}"

    def decrypt(self, sealed: str, context: str) -> str:
        key_id, _, body = sealed[len(_PREFIX) :].partition(":")
        aead = self._keys.get(key_id)
        if aead is None:
            raise ValueError(
                f"{context}: encrypted with key {key_id!r}, which privacy.encryption_keys lacks"
            )
        try:
            raw = base64.urlsafe_b64decode(body)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise ValueError(
                f"{context}: ciphertext does not decrypt (tampered or wrong key)"
            ) from None

    def reseal(self, value: str, context: str) -> str:
        """The value under the current key: ciphertexts re-encrypted, plaintext encrypted."""
        plaintext = self.decrypt(value, context) if self.is_sealed(value) else value
        return self.encrypt(plaintext, context)

    def seal_user(self, row: dict[str, Any]) -> dict[str, Any]:
        """A users row with its contact fields encrypted, in place."""
        for name in CONTACT_FIELDS:
            value = row.get(name)
            if value is not None and not self.is_sealed(value):
                row[name] = self.encrypt(value, f"{row['user_id']}/{name}")
        return row

    def open_user(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A users row with its contact fields decrypted (rows from before encryption, still
        in plaintext, pass as they are until a rotation encrypts them)."""
        out = dict(row)
        for name in CONTACT_FIELDS:
            value = out.get(name)
            if self.is_sealed(value):
                out[name] = self.decrypt(value, f"{out['user_id']}/{name}")
        return out


def _decode_key(key: str, key_id: str) -> bytes:
    try:
        return base64.b64decode(key, validate=True)
    except binascii.Error:
        raise ValueError(f"privacy.encryption_keys.{key_id}: not valid base64") from None
