"""How one event changes the profiles of the entities it touches (the last stage of the path).

Which entities an event touches, and what each remembers of it, is decided here and only here.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> login = Login(event_id="l", user_id="u-1", device_id="d-1", country="NG", ip="102.89.4.17",
...               timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> entity_keys(login)
[('user', 'u-1'), ('device', 'd-1'), ('ip', '102.89.4')]
>>> from vigil.domain import User
>>> transfer = Transaction(event_id="t", transaction_id="t", account_id="a-1", type="transfer",
...                        amount=100, counterparty_country="GB", timestamp=login.timestamp)
>>> entity_keys(transfer, User(user_id="u-1", country="NG"))
[('account', 'a-1'), ('peer', 'NG')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.domain import Login, Phase, Transaction, User
from vigil.profiles.profile import Profile

if TYPE_CHECKING:
    # Only a type here: importing vigil.detect would cycle back (its login detector uses
    # ip_prefix), and vigil.privacy imports this module for ip_prefix alone.
    from vigil.detect.context import Context


#: The peer group of accounts whose holder's home country is not known.
UNKNOWN_GROUP = "*"


def entity_keys(event: Transaction | Login, user: User | None = None) -> list[tuple[str, str]]:
    """The (kind, key) of every profile the event reads and updates.

    ``user`` is the event's user as enrichment found it: a transfer's account is judged
    against, and counted in, the peer group of its holder's country (:func:`peer_group`).
    """
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
    if _genome_flow(event):
        keys.append(("peer", peer_group(user)))
    return keys


def peer_group(user: User | None) -> str:
    """The peer group of an account: its holder's home country from the reference data.

    Without one, the account joins :data:`UNKNOWN_GROUP` (the bank's accounts whose holder
    is unknown) rather than the event's own country: a group must stay put while the
    account's figures are counted in it, and where a customer is when paying is not home.

    >>> peer_group(User(user_id="u", country="GH")), peer_group(None)
    ('GH', '*')
    """
    if user is not None and user.country is not None:
        return user.country
    return UNKNOWN_GROUP


def _genome_flow(event: Transaction | Login) -> bool:
    """True for a completed transaction of an account with a counterparty country."""
    return (
        isinstance(event, Transaction)
        and event.phase is not Phase.START
        and event.account_id is not None
        and event.counterparty_country is not None
    )


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

    Windows and statistics count every event whatever the action, as the offline feature
    builder does. An event that was not allowed (``familiar=False``) is not learned as
    familiar (its country, device, network and counterparties): an attacker's first login
    must not make the transfers that follow it look usual. A ``declined`` (blocked)
    transaction moved no money (:meth:`Profile.moved`) and adds nothing to a flow genome.
    """
    event = ctx.event
    attrs = _attributes(event) if familiar else ()
    for kind, key in keys:
        profile = ctx.profiles[kind]
        if kind == "peer":
            # Not an entity with events of its own: its statistics follow the account's genome.
            if not declined:
                _record_flow(ctx, profile, key)
            continue
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
        if kind == "terminal" and fraud_label_at(event) is not None:
            # What terminal risk divides by: the terminal's completed transactions, shared
            # with every process as the rest of its profile is (vigil.profiles.fraud).
            profile.fraud_tiles().add(ctx.end)
        if kind == "card" and familiar and ctx.home_km is not None:
            profile.farthest = max(profile.farthest, ctx.home_km)


def fraud_label_at(event: Transaction | Login) -> tuple[str, float] | None:
    """The terminal and time a fraud label on ``event`` counts at in terminal risk: those of
    a completed transaction at a terminal; None for other events (they count nothing).

    >>> from datetime import datetime, UTC
    >>> at = datetime(2022, 1, 1, tzinfo=UTC)
    >>> fraud_label_at(Transaction(event_id="e", transaction_id="t", type="withdrawal",
    ...                            amount=50, card_id="c-1", terminal_id="ATM-1", timestamp=at))
    ('ATM-1', 1640995200.0)
    """
    if (
        not isinstance(event, Transaction)
        or event.phase is Phase.START
        or event.terminal_id is None
    ):
        return None
    # The profile update counts it at the event's end time (Context.end): its timestamp.
    return event.terminal_id, event.timestamp.timestamp()


def _record_flow(ctx: Context, peer: Profile, group: str) -> None:
    """Add the transfer to the account's flow genome and its change to the peer group."""
    event = ctx.event
    if not isinstance(event, Transaction) or event.counterparty_country is None:
        return  # entity_keys names a peer group only for such transfers
    account = ctx.profiles["account"]
    direction = event.direction.value if event.direction is not None else "debit"
    changes = account.record_flow(
        event.counterparty_country, direction, ctx.amount_cents or 0, ctx.end, group=group
    )
    peer.peer_group().apply(changes)


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
