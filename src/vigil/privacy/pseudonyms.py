"""Keyed pseudonyms (HMAC-SHA256) for IP addresses, device fingerprints, card numbers and
erased people.

A pseudonym is deterministic for a key, so profiles compare pseudonyms exactly as they would
compare the raw values, and nobody without the key can recover or confirm the raw value.

An IP address keeps its network: its pseudonym is ``~<network>.<address>``, where ``<network>``
is the pseudonym of its /24 (IPv4) or /48 (IPv6) and ``<address>`` that of the whole address,
so :func:`vigil.profiles.update.ip_prefix` (the one definition of "network") gives the same
network pseudonym for two addresses of one network, and works unchanged on pseudonyms.

A card id that is a card number (13 to 19 digits, spaces or dashes allowed, passing the Luhn
check) is replaced by a token, so no card number is stored or profiled; any other card id is
the bank's own reference for the card and is kept.

>>> p = Pseudonymiser(b"k")
>>> a, b = p.ip("102.89.4.17"), p.ip("102.89.4.200")
>>> a != b, ip_prefix(a) == ip_prefix(b), ip_prefix(a) == ip_prefix(p.ip("102.89.5.1"))
(True, True, False)
>>> p.ip(a) == a, p.is_pseudonym(p.device("d-1")), len(a)
(True, True, 34)
>>> token = p.card("4111 1111 1111 1111")
>>> token == p.card("4111111111111111") == p.card(token), p.is_pseudonym(token)
(True, True)
>>> p.card("c-0042"), p.card("4111111111111112")  # a reference; no card number (Luhn)
('c-0042', '4111111111111112')

Free text (an analyst's note) keeps its words but not the personal data typed into it: card
numbers, IP addresses and e-mail addresses become the same pseudonyms as the stored fields, so
a note still points at the card it speaks of.

>>> p.text("card 4111-1111-1111-1111 from 102.89.4.17") == f"card {token} from {a}"
True
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from vigil.profiles.update import ip_prefix

_HOST = re.compile(r"~[0-9a-f]{16}\.[0-9a-f]{16}")
_OPAQUE = re.compile(r"~[0-9a-f]{32}")
_CARD_NUMBER = re.compile(r"\d(?:[ -]?\d){12,18}")
# In free text: runs of digit groups joined by one space or dash (a card number is looked for
# among their consecutive groups), IPv4 and IPv6 candidates (checked by ipaddress), e-mails.
_DIGIT_RUN = re.compile(r"(?<![\w.~])\d+(?:[ -]\d+)*(?!\w|\.\d)")
_IP_CANDIDATE = re.compile(
    r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w:]|\.\w)"
)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

M = TypeVar("M", bound=BaseModel)
_CACHE = 1 << 16


class Pseudonymiser:
    """HMAC-SHA256 pseudonyms under one key; each kind of value has its own domain tag, so an
    IP and a device id that happen to be the same string get different pseudonyms.

    Applying it twice changes nothing (a pseudonym is recognised by its shape), so events that
    were pseudonymised on the way in pass through storage unchanged.

    >>> p = Pseudonymiser(b"k")
    >>> p.subject("u-1") == p.subject("u-1") != Pseudonymiser(b"other").subject("u-1")
    True
    >>> p.subject(p.subject("u-1")) == p.subject("u-1")
    True
    """

    __slots__ = ("_card", "_device", "_ip", "_key")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("privacy.hmac_key: must not be empty")
        self._key = key
        # The same addresses and devices come back event after event; an HMAC and an address
        # parse cost tens of microseconds, a cache hit well under one.
        self._ip = lru_cache(maxsize=_CACHE)(self._ip_uncached)
        self._device = lru_cache(maxsize=_CACHE)(self._device_uncached)
        self._card = lru_cache(maxsize=_CACHE)(self._card_uncached)

    def __reduce__(self) -> tuple[type[Pseudonymiser], tuple[bytes]]:
        return Pseudonymiser, (self._key,)  # the caches are rebuilt, not copied

    def _digest(self, tag: bytes, value: str, size: int) -> str:
        return hmac.digest(self._key, tag + b"\0" + value.encode(), "sha256").hex()[:size]

    @staticmethod
    def is_pseudonym(value: str) -> bool:
        """True for a value this class produced (of any kind)."""
        return value.startswith("~") and bool(_HOST.fullmatch(value) or _OPAQUE.fullmatch(value))

    def ip(self, address: str) -> str:
        """``~<network>.<address>``; a string that is no IP address has no network, so both
        halves come from the whole string (it still never reaches storage raw)."""
        if _HOST.fullmatch(address):
            return address
        return self._ip(address)

    def _ip_uncached(self, address: str) -> str:
        try:
            parsed = ipaddress.ip_address(address.strip())
        except ValueError:
            whole = self._digest(b"ip-other", address, 16)
            return f"~{whole}.{whole}"
        # The exploded IPv6 form has every group, so ip_prefix's first three are the /48.
        canonical = parsed.exploded if parsed.version == 6 else str(parsed)
        network = self._digest(b"ip-network", ip_prefix(canonical), 16)
        return f"~{network}.{self._digest(b'ip', canonical, 16)}"

    def device(self, fingerprint: str) -> str:
        return fingerprint if _OPAQUE.fullmatch(fingerprint) else self._device(fingerprint)

    def _device_uncached(self, fingerprint: str) -> str:
        return self._opaque(b"device", fingerprint)

    def card(self, card_id: str) -> str:
        """A card number's token (``~`` and 32 hex digits, the same for every way of writing
        the number); any other card id, a token included, unchanged."""
        return self._card(card_id) if _CARD_NUMBER.fullmatch(card_id) else card_id

    def _card_uncached(self, card_id: str) -> str:
        digits = card_id.replace(" ", "").replace("-", "")
        return self._opaque(b"card", digits) if _luhn(digits) else card_id

    def subject(self, identifier: str) -> str:
        """The pseudonym an erased user or card keeps in the audit trail."""
        return identifier if _OPAQUE.fullmatch(identifier) else self._opaque(b"subject", identifier)

    def email(self, address: str) -> str:
        """An e-mail address's pseudonym (case-insensitive, as mail systems compare them)."""
        return self._opaque(b"email", address.lower())

    def text(self, text: str) -> str:
        """Free text with its card numbers (Luhn-valid runs of 13 to 19 digits), IP addresses
        and e-mail addresses replaced by their pseudonyms; pseudonyms already in it, and every
        other word or number, unchanged."""
        text = _EMAIL.sub(lambda m: self.email(m.group()), text)
        text = _IP_CANDIDATE.sub(self._ip_in_text, text)
        return _DIGIT_RUN.sub(self._cards_in_run, text)

    def _ip_in_text(self, match: re.Match[str]) -> str:
        try:
            ipaddress.ip_address(match.group())
        except ValueError:
            return match.group()
        return self.ip(match.group())

    def _cards_in_run(self, match: re.Match[str]) -> str:
        """A run of digit groups with each card number among consecutive groups tokenised."""
        groups = re.split(r"([ -])", match.group())
        digits, separators = groups[::2], groups[1::2]
        out: list[str] = []
        i = 0
        while i < len(digits):
            card = self._card_at(digits, i)
            if card is None:
                out.append(digits[i])
                out.append(separators[i] if i < len(separators) else "")
                i += 1
                continue
            end, token = card
            out.append(token)
            out.append(separators[end - 1] if end - 1 < len(separators) else "")
            i = end
        return "".join(out)

    def _card_at(self, digits: list[str], start: int) -> tuple[int, str] | None:
        """The longest card number of the groups from ``start``: (end group, token)."""
        total, found = 0, None
        for end in range(start, len(digits)):
            total += len(digits[end])
            if total > 19:
                break
            number = "".join(digits[start : end + 1])
            if total >= 13 and _luhn(number):
                found = (end + 1, self._card(number))
        return found

    def erased(self, identifier: str) -> str:
        """The pseudonym an erased id keeps outside the hash chain: :meth:`subject`, except that
        a card token is pseudonymised again (it stands for the card everywhere else)."""
        return self._opaque(b"subject", identifier)

    def derived_key(self, purpose: bytes) -> bytes:
        """A key of its own for ``purpose`` (sealing the decision log), derived from this one:
        whoever lacks the HMAC key can compute neither, and neither doubles as the other."""
        return hmac.digest(self._key, b"derive\0" + purpose, "sha256")

    def _opaque(self, tag: bytes, value: str) -> str:
        return "~" + self._digest(tag, value, 32)

    def event(self, event: M) -> M:
        """The event with its ``ip``, ``device_id`` and card number pseudonymised (the same
        object when there is nothing to change)."""
        update = self._changes(event.__dict__)
        return event.model_copy(update=update) if update else event

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A storage row with its ``ip``, ``device_id`` and card number pseudonymised, in
        place."""
        row.update(self._changes(row))
        return row

    def _changes(self, values: dict[str, Any]) -> dict[str, str]:
        changes = {}
        ip, device, card = values.get("ip"), values.get("device_id"), values.get("card_id")
        if ip is not None and not _HOST.fullmatch(ip):
            changes["ip"] = self.ip(ip)
        if device is not None and not _OPAQUE.fullmatch(device):
            changes["device_id"] = self.device(device)
        if card is not None and (token := self.card(card)) != card:
            changes["card_id"] = token
        return changes


def _luhn(digits: str) -> bool:
    """The check digit card numbers carry (ISO/IEC 7812)."""
    total = 0
    for i, digit in enumerate(reversed(digits)):
        d = int(digit) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
