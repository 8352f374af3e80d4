"""Injected fraud: one function per pattern, each making one labelled episode on one victim.

Every function takes the victim's index (card, user and account share it) and returns the
episode's events, or ``None`` when this victim cannot host the pattern (then another is tried).
The events really have the property the label claims; tests check each one. Card episodes sit
in a gap of the victim's own ATM timeline, reachable at the legitimate speed from the
neighbouring operations, so the only impossible journeys in the data are the clones'.

>>> allocate(10, {"card_cloning": 1.0, "money_mule": 1.0, "amount_spike": 0.0})
{'card_cloning': 5, 'amount_spike': 0, 'money_mule': 5}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vigil.geo import haversine_km
from vigil.simulate.bank import SyntheticBank, new_device_ids
from vigil.simulate.config import PATTERNS
from vigil.simulate.geo import points_in_boxes, travel_seconds
from vigil.simulate.logins import ip_addresses
from vigil.simulate.records import (
    CREDIT,
    DEBIT,
    DEPOSIT,
    INQUIRY,
    ONLINE,
    TRANSFER,
    WITHDRAWAL,
    Floats,
    Ints,
    LoginBatch,
    TxBatch,
)
from vigil.simulate.transactions import MIN_STEP_S, durations

# Thresholds the episodes are built to clear with room to spare.
CLONE_MIN_KM = 300.0
CLONE_SPEED_KMH = 500.0
HOUR = 3600


@dataclass
class Episode:
    """The events of one injected episode: transactions, and logins for account takeovers.

    >>> len(Episode(TxBatch.empty(2)).tx)
    2
    """

    tx: TxBatch
    logins: LoginBatch | None = None


class FraudContext:
    """The victim-side view the pattern functions need: timelines, ATMs, random stream.

    >>> from vigil.simulate.bank import build_bank
    >>> from vigil.simulate.config import BankConfig
    >>> from vigil.simulate.geo import distance_matrix
    >>> from vigil.simulate.logins import user_logins
    >>> from vigil.simulate.transactions import atm_transactions
    >>> bank = build_bank(BankConfig(cards=20, days=10))
    >>> lat, lon = bank.atms.lat(), bank.atms.lon()
    >>> legit = atm_transactions(bank, distance_matrix(lat, lon, lat, lon))
    >>> ctx = FraudContext(bank, legit, user_logins(bank))
    >>> episode = extract_limit_breach(ctx, 0)
    >>> bool(episode.tx.amount[0] > bank.cards.extract_limit[0])
    True
    """

    def __init__(self, bank: SyntheticBank, legit_atm: TxBatch, logins: LoginBatch) -> None:
        self.bank = bank
        self.rng = bank.rng["frauds"]
        self.legit = legit_atm
        self.bounds = np.searchsorted(legit_atm.card, np.arange(bank.n + 1))
        order = np.lexsort((logins.time, logins.user))
        self.login_time = logins.time[order]
        self.login_bounds = np.searchsorted(logins.user[order], np.arange(bank.n + 1))
        self._refresh_atms()

    def logins_of(self, user: int) -> Ints:
        """The user's legitimate login times, in order."""
        return self.login_time[self.login_bounds[user] : self.login_bounds[user + 1]]

    def _refresh_atms(self) -> None:
        atms = self.bank.atms
        self.atm_lat, self.atm_lon = atms.lat(), atms.lon()
        self.atm_internal = np.asarray(atms.internal, dtype=bool)

    def km_from(self, atm: int, others: Ints | None = None) -> Floats:
        """Distances from ATM ``atm`` to ``others`` (all ATMs by default)."""
        lat = self.atm_lat if others is None else self.atm_lat[others]
        lon = self.atm_lon if others is None else self.atm_lon[others]
        return haversine_km(self.atm_lat[atm], self.atm_lon[atm], lat, lon)

    def timeline(self, card: int) -> slice:
        return slice(int(self.bounds[card]), int(self.bounds[card + 1]))

    def slot(self, card: int, length: int, first_atm: int, last_atm: int) -> int | None:
        """A start time for an episode of ``length`` s that fits between the card's operations."""
        t, bank = self.timeline(card), self.bank
        start, end, atm = self.legit.start[t], self.legit.end[t], self.legit.atm[t]
        speed = bank.config.legit_speed_kmh
        after = end + travel_seconds(self.km_from(first_atm, atm), speed) + MIN_STEP_S + 60
        before = start - travel_seconds(self.km_from(last_atm, atm), speed) - MIN_STEP_S - 60
        earliest = np.concatenate([[bank.start_s + HOUR], after])
        latest = np.concatenate([before, [bank.end_s - HOUR]]) - length
        fits = np.flatnonzero(latest >= earliest)
        if len(fits) == 0:
            return None
        j = int(self.rng.choice(fits))
        return int(self.rng.integers(earliest[j], latest[j] + 1))

    def far_external_atm(self, atm: int) -> int:
        """An external ATM at least CLONE_MIN_KM away, added in the farthest city if none is."""
        km = self.km_from(atm)
        far = np.flatnonzero(~self.atm_internal & (km >= CLONE_MIN_KM + 20.0))
        if len(far):
            return int(self.rng.choice(far))
        ref = self.bank.reference
        centre_lat = ref.city_box[:, :2].mean(axis=1)
        centre_lon = ref.city_box[:, 2:].mean(axis=1)
        city = int(
            np.argmax(haversine_km(self.atm_lat[atm], self.atm_lon[atm], centre_lat, centre_lon))
        )
        lat, lon = points_in_boxes(self.rng, ref.city_box, np.array([city]))
        added = self.bank.atms.add_external(float(lat[0]), float(lon[0]), city)
        self._refresh_atms()
        return added

    def usual_atm(self, card: int) -> int:
        return int(self.bank.cards.usual_atms[card, 0])


def _atm_episode(card: int, n: int) -> TxBatch:
    """``n`` two-phase ATM rows for ``card``, ready for times, types and amounts."""
    batch = TxBatch.empty(n)
    batch.card[:] = card
    batch.account[:] = card
    batch.two_phase[:] = True
    return batch


def card_cloning(ctx: FraudContext, card: int) -> Episode | None:
    """A withdrawal far away, sooner after the card's last one than 500 km/h allows.

    Short (30-90 s) and about twice the previous withdrawal's amount.
    """
    t, rng = ctx.timeline(card), ctx.rng
    legit = ctx.legit
    candidates = np.flatnonzero((legit.type[t] == WITHDRAWAL) & (legit.amount[t] > 0)) + t.start
    for i in rng.permutation(candidates):
        far = ctx.far_external_atm(int(legit.atm[i]))
        km = float(ctx.km_from(int(legit.atm[i]), np.array([far]))[0])
        limit = km / CLONE_SPEED_KMH * HOUR
        delay = max(60, int(rng.uniform(0.15, 0.6) * limit))
        duration = int(rng.integers(30, 91))
        start = int(legit.end[i]) + delay
        if start + duration >= ctx.bank.end_s:
            continue
        if i + 1 < t.stop:
            back = ctx.km_from(far, np.array([legit.atm[i + 1]]))[0] / CLONE_SPEED_KMH * HOUR
            # Leave the owner's next operation reachable even at 500 km/h: it is not the fraud.
            if legit.start[i + 1] < start + duration + 1.5 * back + 60:
                continue
        batch = _atm_episode(card, 1)
        batch.start[:] = start
        batch.end[:] = start + duration
        batch.type[:] = WITHDRAWAL
        batch.direction[:] = DEBIT
        batch.atm[:] = far
        batch.amount[:] = round(float(legit.amount[i]) * rng.uniform(1.8, 2.2), 2)
        return Episode(batch)
    return None


def lost_stolen_card(ctx: FraudContext, card: int) -> Episode | None:
    """3-6 withdrawals near or over the extract limit at different ATMs within a few hours."""
    rng, cards = ctx.rng, ctx.bank.cards
    home_km = haversine_km(cards.home_lat[card], cards.home_lon[card], ctx.atm_lat, ctx.atm_lon)
    nearby = np.flatnonzero(home_km <= 100.0)
    size = min(int(rng.integers(3, 7)), len(nearby))
    if size < 3:
        return None
    # The thief starts at one of the nearest ATMs and drives to the next nearest each time.
    route = [
        int(
            nearby[np.argsort(home_km[nearby], kind="stable")[rng.integers(0, min(3, len(nearby)))]]
        )
    ]
    while len(route) < size:
        rest = np.setdiff1d(nearby, route)
        route.append(int(rest[np.argmin(ctx.km_from(route[-1], rest))]))
    atm = np.array(route)
    duration = rng.integers(60, 181, size)
    legs = travel_seconds(
        haversine_km(
            ctx.atm_lat[atm[:-1]], ctx.atm_lon[atm[:-1]], ctx.atm_lat[atm[1:]], ctx.atm_lon[atm[1:]]
        ),
        ctx.bank.config.legit_speed_kmh,
    )
    wait = np.concatenate([[0], legs + rng.integers(120, 901, size - 1) + MIN_STEP_S])
    offset = np.cumsum(wait + np.concatenate([[0], duration[:-1]]))
    length = int(offset[-1] + duration[-1])
    if length > 6 * HOUR:
        return None
    begin = ctx.slot(card, length, route[0], route[-1])
    if begin is None:
        return None
    batch = _atm_episode(card, size)
    batch.start = begin + offset
    batch.end = batch.start + duration
    batch.type[:] = WITHDRAWAL
    batch.direction[:] = DEBIT
    batch.atm = atm
    batch.amount = np.round(cards.extract_limit[card] * rng.uniform(0.8, 1.25, size), 2)
    return Episode(batch)


def account_takeover(ctx: FraudContext, user: int) -> Episode | None:
    """A login from a new country and device, then 1-3 large transfers abroad within the hour."""
    rng, bank = ctx.rng, ctx.bank
    countries = bank.reference.countries
    attack = countries.with_role("attack")
    usual = {
        bank.accounts.counterparty_country[k] for k in bank.accounts.destinations[user] if k >= 0
    }
    pool = [int(c) for c in attack if countries.codes[c] not in usual]
    where = int(rng.choice(attack))
    # The attacker arrives once the user has a history of their own to stand out against.
    history = ctx.logins_of(user)
    earliest = int(history[1]) + HOUR if len(history) >= 2 else bank.end_s
    if earliest >= bank.end_s - 2 * HOUR:
        return None
    login_at = int(rng.integers(earliest, bank.end_s - 2 * HOUR))
    device = new_device_ids(rng, 1)[0]
    prefix = countries.ip_prefixes[where][int(rng.integers(0, len(countries.ip_prefixes[where])))]
    ip = ip_addresses(rng, [prefix], 2)[0]
    lat = round(float(countries.latitude[where] + rng.normal(0, 0.03)), 4)
    lon = round(float(countries.longitude[where] + rng.normal(0, 0.03)), 4)

    login = LoginBatch.empty(1)
    login.user[:] = user
    login.time[:] = login_at
    login.ip[:] = ip
    login.device[:] = device
    login.latitude[:], login.longitude[:] = lat, lon
    login.country[:] = countries.codes[where]
    login.session_seconds[:] = float(rng.integers(600, 1800))

    n = int(rng.integers(1, 4))
    batch = TxBatch.empty(n)
    batch.account[:] = user
    batch.start = batch.end = login_at + np.sort(rng.integers(60, HOUR - 60, n))
    batch.type[:] = TRANSFER
    batch.channel[:] = ONLINE
    batch.direction[:] = DEBIT
    batch.amount = np.round(bank.cards.behaviour[user, 7] * rng.uniform(3.0, 8.0, n), 2)
    for k in range(n):
        cc = countries.codes[int(rng.choice(pool))]
        batch.counterparty[k] = bank.accounts.new_counterparty(
            f"{cc}{int(rng.integers(0, 10**10)):010d}", cc
        )
    batch.ip[:] = ip
    batch.device[:] = device
    batch.latitude[:], batch.longitude[:] = lat, lon
    batch.country[:] = countries.codes[where]
    return Episode(batch, login)


def _one_operation(ctx: FraudContext, card: int, kind: int, amount: float) -> Episode | None:
    """A single operation of ``kind`` at one of the card's usual ATMs, fitted between its own."""
    rng, bank = ctx.rng, ctx.bank
    atm = ctx.usual_atm(card)
    duration = int(durations(rng, 1)[0])
    begin = ctx.slot(card, duration, atm, atm)
    if begin is None:
        return None
    batch = _atm_episode(card, 1)
    batch.start[:] = begin
    batch.end[:] = begin + duration
    batch.type[:] = kind
    batch.direction[:] = CREDIT if kind == DEPOSIT else DEBIT
    batch.atm[:] = atm
    batch.amount[:] = round(amount, 2)
    if kind == TRANSFER:
        batch.counterparty[:] = bank.accounts.destinations[card, 0]
    return Episode(batch)


def amount_spike(ctx: FraudContext, card: int) -> Episode | None:
    """One transfer or deposit 5-10 times the card's usual amount of that type."""
    rng = ctx.rng
    kind = TRANSFER if rng.random() < 0.7 else DEPOSIT
    mean = ctx.bank.cards.behaviour[card, 7 if kind == TRANSFER else 3]
    return _one_operation(ctx, card, kind, float(mean * rng.uniform(5.2, 9.8)))


def velocity_burst(ctx: FraudContext, card: int) -> Episode | None:
    """8-15 small operations within an hour at one or two neighbouring ATMs."""
    rng, bank = ctx.rng, ctx.bank
    size = int(rng.integers(8, 16))
    first = ctx.usual_atm(card)
    usual = bank.cards.usual_atms[card, : bank.cards.n_usual_atms[card]]
    close = usual[(ctx.km_from(first, usual) <= 3.0) & (usual != first)]
    second = int(rng.choice(close)) if len(close) and rng.random() < 0.5 else first
    atm = np.where(np.arange(size) < size // 2, first, second)
    duration = rng.integers(30, 91, size)
    hop = travel_seconds(ctx.km_from(first, np.array([second])), bank.config.legit_speed_kmh)[0]
    wait = rng.integers(10, 61, size) + MIN_STEP_S
    wait[0] = 0
    wait[size // 2] += hop
    offset = np.cumsum(wait + np.concatenate([[0], duration[:-1]]))
    length = int(offset[-1] + duration[-1])
    begin = ctx.slot(card, length, first, second)
    if begin is None or length > HOUR - 60:
        return None
    kind = np.where(rng.random(size) < 0.5, INQUIRY, WITHDRAWAL).astype(np.int8)
    small = np.round(bank.cards.behaviour[card, 0] * rng.uniform(0.03, 0.12, size), 2)
    batch = _atm_episode(card, size)
    batch.start = begin + offset
    batch.end = batch.start + duration
    batch.type = kind
    batch.direction = np.where(kind == WITHDRAWAL, DEBIT, -1).astype(np.int8)
    batch.atm = atm
    batch.amount = np.where(kind == WITHDRAWAL, small, 0.0)
    return Episode(batch)


def extract_limit_breach(ctx: FraudContext, card: int) -> Episode | None:
    """One withdrawal above the card's extract limit."""
    limit = ctx.bank.cards.extract_limit[card]
    return _one_operation(ctx, card, WITHDRAWAL, float(limit * ctx.rng.uniform(1.1, 1.6)))


def money_mule(ctx: FraudContext, account: int) -> Episode | None:
    """10-20 small transfers in from different accounts within a day, most of it sent abroad."""
    rng, bank = ctx.rng, ctx.bank
    countries, accounts = bank.reference.countries, bank.accounts
    # Inflow over up to 20 h, forwarding up to 4 h later: the period must hold both.
    latest = bank.end_s - 26 * HOUR
    if latest <= bank.start_s + HOUR:
        return None
    n_in = int(rng.integers(10, 21))
    first = int(rng.integers(bank.start_s + HOUR, latest))
    incoming_at = first + np.sort(rng.integers(0, 20 * HOUR, n_in))
    incoming = np.round(bank.cards.behaviour[account, 7] * rng.uniform(0.05, 0.3, n_in), 2)
    senders = rng.choice(10**10, n_in, replace=False)
    n_out = int(rng.integers(1, 3))
    forward_at = int(incoming_at[-1]) + np.sort(rng.integers(HOUR // 2, 4 * HOUR, n_out))
    share = np.array([1.0]) if n_out == 1 else np.array([(s := rng.uniform(0.3, 0.7)), 1 - s])
    forwarded = np.round(incoming.sum() * rng.uniform(0.8, 0.95) * share, 2)
    abroad = countries.with_role("attack")

    batch = TxBatch.empty(n_in + n_out)
    batch.account[:] = account
    batch.start = batch.end = np.concatenate([incoming_at, forward_at])
    batch.type[:] = TRANSFER
    batch.channel[:] = ONLINE
    batch.direction = np.array([CREDIT] * n_in + [DEBIT] * n_out, dtype=np.int8)
    batch.amount = np.concatenate([incoming, forwarded])
    for k, digits in enumerate(senders):
        batch.counterparty[k] = accounts.new_counterparty(f"NG{int(digits):010d}", "NG")
    for k in range(n_out):
        cc = countries.codes[int(rng.choice(abroad))]
        batch.counterparty[n_in + k] = accounts.new_counterparty(
            f"{cc}{int(rng.integers(0, 10**10)):010d}", cc
        )
    # The mule forwards from their own phone at home: nothing about the session is unusual.
    users = bank.users
    out = slice(n_in, None)
    batch.device[out] = users.devices[account][0]
    batch.ip[out] = ip_addresses(rng, [users.ip_prefix[account]] * n_out, 1)
    batch.country[out] = "NG"
    batch.latitude[out] = round(float(bank.cards.home_lat[account]), 4)
    batch.longitude[out] = round(float(bank.cards.home_lon[account]), 4)
    return Episode(batch)


PATTERN_FUNCTIONS: dict[str, Callable[[FraudContext, int], Episode | None]] = {
    "card_cloning": card_cloning,
    "lost_stolen_card": lost_stolen_card,
    "account_takeover": account_takeover,
    "amount_spike": amount_spike,
    "velocity_burst": velocity_burst,
    "extract_limit_breach": extract_limit_breach,
    "money_mule": money_mule,
}
assert tuple(PATTERN_FUNCTIONS) == PATTERNS


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` episodes by weight (largest remainder, ties in pattern order)."""
    names = [p for p in PATTERNS if p in weights]
    w = np.array([max(weights[p], 0.0) for p in names])
    if total <= 0 or w.sum() <= 0:
        return dict.fromkeys(names, 0)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    for k in np.argsort(-remainder, kind="stable")[: total - counts.sum()]:
        counts[k] += 1
    return {p: int(c) for p, c in zip(names, counts, strict=True)}


def inject_frauds(
    bank: SyntheticBank, legit_atm: TxBatch, logins: LoginBatch
) -> tuple[TxBatch, LoginBatch, dict[str, int]]:
    """All episodes: ``round(fraud_rate x cards)`` of them, each on its own victim."""
    ctx = FraudContext(bank, legit_atm, logins)
    cfg = bank.config
    weights = {p: cfg.pattern_weights.get(p, 0.0) for p in PATTERNS}
    wanted = allocate(round(cfg.fraud_rate * bank.n), weights)
    order = ctx.rng.permutation(bank.n)
    used = np.zeros(bank.n, dtype=bool)
    tx: list[TxBatch] = [TxBatch.empty(0)]
    logins: list[LoginBatch] = [LoginBatch.empty(0)]
    made = dict.fromkeys(PATTERNS, 0)
    for code, pattern in enumerate(PATTERNS):
        make = PATTERN_FUNCTIONS[pattern]
        failures = 0
        for victim in order:
            if made[pattern] >= wanted.get(pattern, 0) or failures > 200:
                break
            if used[victim]:
                continue
            episode = make(ctx, int(victim))
            if episode is None:
                failures += 1
                continue
            used[victim] = True
            made[pattern] += 1
            episode.tx.pattern[:] = code
            tx.append(episode.tx)
            if episode.logins is not None:
                episode.logins.pattern[:] = code
                logins.append(episode.logins)
    return TxBatch.concat(tx), LoginBatch.concat(logins), made
