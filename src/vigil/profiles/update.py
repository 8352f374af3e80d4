"""How one event changes the profiles of the entities it touches (the last stage of the path).

Which entities an event touches, and what each remembers of it, is decided here and only here.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> login = Login(event_id="l", user_id="u-1", device_id="d-1", country="NG", ip="102.89.4.17",
...               timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> entity_keys(login)
[('user', 'u-1'), ('device', 'd-1'), ('ip', '102.89.4')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.domain import Login, Phase, Transaction
from vigil.profiles.profile import Profile

if TYPE_CHECKING:
    # Only a type here: importing vigil.detect would cycle back (its login detector uses
    # ip_prefix), and vigil.privacy imports this module for ip_prefix alone.
    from vigil.detect.context import Context


def entity_keys(event: Transaction | Login) -> list[tuple[str, str]]:
    """The (kind, key) of every profile the event reads and updates."""
    if isinstance(event, Login):
        keys = [("user", event.user_id)]
    else:
        keys = [
            (kind, key)
            for kind, key in (
                ("card", event.card_id),
                ("account", event.account_id),
                ("user", event.user_id),
                ("terminal", event.terminal_id),
            )
            if key is not None
        ]
    if event.device_id is not None:
        keys.append(("device", event.device_id))
    if isinstance(event, Login) and event.ip is not None:
        # Logins only: credential stuffing is judged per network, and a profile per network
        # (not per address) stays few and small while still grouping a rotating proxy's hosts.
        keys.append(("ip", ip_prefix(event.ip)))
    return keys


def ip_prefix(ip: str) -> str:
    """The network an address belongs to: /24 for IPv4, /48 for IPv6.

    >>> ip_prefix("102.89.4.17"), ip_prefix("2001:db8:85a3::8a2e:370:7334")
    ('102.89.4', '2001:db8:85a3')
    """
    if ":" in ip:
        return ":".join(ip.split(":")[:3])
    return ip.rsplit(".", 1)[0]


def _attributes(event: Transaction | Login) -> list[tuple[str, str]]:
    attrs = []
    if event.country is not None:
        attrs.append(("country", event.country))
    if event.device_id is not None:
        attrs.append(("device", event.device_id))
    if event.ip is not None:
        attrs.append(("ip_prefix", ip_prefix(event.ip)))
    if isinstance(event, Transaction):
        if event.terminal_id is not None:
            attrs.append(("terminal", event.terminal_id))
        if event.counterparty_account is not None:
            attrs.append(("counterparty", event.counterparty_account))
        if event.counterparty_country is not None:
            attrs.append(("counterparty_country", event.counterparty_country))
    return attrs


def update_profiles(
    ctx: Context, keys: list[tuple[str, str]], *, familiar: bool = True, declined: bool = False
) -> None:
    """Apply the event to every profile in ``ctx.profiles`` (already advanced to its time).

    An event that was not allowed (``familiar=False``) still counts in windows and statistics,
    but its country, device, network and counterparties are not learned as familiar: an
    attacker's first login must not make the transfers that follow it look usual. A
    ``declined`` (blocked) transaction counts as an attempt but moved no money.
    """
    event = ctx.event
    attrs = _attributes(event) if familiar else ()
    for kind, _key in keys:
        profile = ctx.profiles[kind]
        if kind == "terminal":
            own = ()
        elif kind in ("device", "ip"):
            user = event.user_id
            own = (("user", user),) if user is not None else ()
        else:
            own = attrs
        # Only a card-present event says where the card is (see Context.card_present).
        located = kind != "card" or ctx.card_present
        _apply(ctx, profile, own, declined, witness=kind in ("device", "ip"), located=located)
        if kind == "card" and familiar and ctx.home_km is not None:
            profile.farthest = max(profile.farthest, ctx.home_km)


def _apply(
    ctx: Context,
    profile: Profile,
    attrs,
    declined: bool,
    witness: bool = False,
    located: bool = True,
) -> None:
    event = ctx.event
    where = (ctx.latitude, ctx.longitude, ctx.place) if located else (None, None, None)
    latitude, longitude, place = where
    if isinstance(event, Login):
        # A device or network remembers who tried it, failed attempts included.
        profile.record_login(
            ctx.start,
            event.success,
            latitude=ctx.latitude,
            longitude=ctx.longitude,
            place=ctx.place,
            attributes=() if witness else attrs,
            witnessed=attrs if witness else (),
        )
    elif event.phase is Phase.START:
        profile.record_start(event.transaction_id, ctx.start, place, latitude, longitude)
    else:
        profile.record_transaction(
            ctx.start,
            ctx.end,
            ctx.category,
            ctx.amount_cents or 0,
            place=place,
            latitude=latitude,
            longitude=longitude,
            attributes=attrs,
            transaction_id=event.transaction_id,
            declined=declined,
        )
