"""The synthetic bank's stable data: ATMs, cards with their behaviour, users, account contacts.

Card ``i`` (0-based here) is ``c-<bank>-<i+1>``, owned by user ``u-<bank>-<i+1>`` and drawing on
account ``a-<bank>-<i+1>``: one index addresses all three.

>>> from vigil.simulate.config import BankConfig
>>> bank = build_bank(BankConfig(cards=50, atms_internal=5, atms_external=3))
>>> bank.atms.ids[:2], bank.atms.ids[-1], bank.card_ids()[0]
(['VGB-1', 'VGB-2'], 'EXT-3', 'c-VGB-1')
>>> bool((bank.cards.extract_limit == (5 * bank.cards.behaviour[:, 0]).round(2)).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time

import numpy as np

from vigil.simulate.config import BankConfig
from vigil.simulate.geo import distance_matrix, points_in_boxes
from vigil.simulate.records import Floats, Ints
from vigil.simulate.reference import Reference, load_reference

# How many of its nearby ATMs a card uses at most (the nearest first).
MAX_USUAL_ATMS = 6
DAY = 86_400
# Nigeria keeps West Africa Time all year: UTC+1.
LOCAL_OFFSET_S = 3_600

# Component names, each with its own random stream so that changing one part of the
# simulation leaves the draws of every other part untouched.
STREAMS = ("atms", "cards", "users", "accounts", "transactions", "logins", "online", "frauds")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per simulation component, all derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}


@dataclass
class Atms:
    """ATM positions; frauds may append external ATMs in far cities, hence lists that grow.

    >>> atms = Atms(["VGB-1"], [6.5], [3.4], [0], [True])
    >>> atms.ids[atms.add_external(12.0, 8.5, 2)], len(atms)
    ('EXT-1', 2)
    """

    ids: list[str]
    latitude: list[float]
    longitude: list[float]
    city: list[int]  # index into Reference.cities
    internal: list[bool]

    def __len__(self) -> int:
        return len(self.ids)

    def add_external(self, latitude: float, longitude: float, city: int) -> int:
        self.ids.append(f"EXT-{sum(not i for i in self.internal) + 1}")
        self.latitude.append(latitude)
        self.longitude.append(longitude)
        self.city.append(city)
        self.internal.append(False)
        return len(self.ids) - 1

    def lat(self) -> Floats:
        return np.asarray(self.latitude, dtype=np.float64)

    def lon(self) -> Floats:
        return np.asarray(self.longitude, dtype=np.float64)


@dataclass
class Cards:
    """Per-card arrays (row ``i`` is card ``c-<bank>-<i+1>``).

    >>> from vigil.simulate.config import BankConfig
    >>> build_bank(BankConfig(cards=3)).cards.behaviour.shape
    (3, 10)
    """

    behaviour: Floats  # (cards, 10) in BEHAVIOUR_COLUMNS order
    extract_limit: Floats
    home_lat: Floats
    home_lon: Floats
    expiration: list[str]
    cvc: list[str]
    usual_atms: Ints  # (cards, MAX_USUAL_ATMS), nearest first, padded with the nearest
    n_usual_atms: Ints


@dataclass
class Users:
    """Per-user habits: devices, IP prefix, login hour and rate, an optional trip abroad.

    >>> from vigil.simulate.config import BankConfig
    >>> users = build_bank(BankConfig(cards=3)).users
    >>> all(1 <= len(d) <= 2 for d in users.devices), users.ip_prefix[0].count(".")
    (True, 2)
    """

    created_at: Ints  # unix seconds
    devices: list[list[str]]  # 1-2 usual device ids per user
    ip_prefix: list[str]  # the user's usual /24, e.g. "102.89.14"
    login_hour: Floats  # usual local hour of day
    logins_per_day: Floats
    travel_country: Ints  # index into Countries, -1 when the user stays home
    travel_start: Ints  # unix seconds
    travel_end: Ints
    email: list[str]
    phone: list[str]


@dataclass
class Accounts:
    """Usual counterparties: 1-3 destinations per account, 1-2 payers who send it money.

    >>> from vigil.simulate.config import BankConfig
    >>> accounts = build_bank(BankConfig(cards=4)).accounts
    >>> bool((accounts.n_destinations >= 1).all() and (accounts.n_destinations <= 3).all())
    True
    """

    counterparty: list[str]  # every counterparty account id known so far
    counterparty_country: list[str]
    destinations: Ints  # (accounts, 3) into counterparty, -1 padded
    n_destinations: Ints
    payers: Ints  # (accounts, 2) into counterparty, -1 padded
    n_payers: Ints

    def new_counterparty(self, account: str, country: str) -> int:
        self.counterparty.append(account)
        self.counterparty_country.append(country)
        return len(self.counterparty) - 1


@dataclass
class SyntheticBank:
    """The whole stable side of the simulation, with one random stream per component.

    >>> from vigil.simulate.config import BankConfig
    >>> bank = build_bank(BankConfig(cards=5, days=2))
    >>> bank.n, bank.end_s - bank.start_s
    (5, 172800)
    """

    config: BankConfig
    reference: Reference
    atms: Atms
    cards: Cards
    users: Users
    accounts: Accounts
    start_s: int  # unix seconds of the period's first instant
    end_s: int
    rng: dict[str, np.random.Generator] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.cards.extract_limit)

    def card_ids(self) -> list[str]:
        return [f"c-{self.config.bank_code}-{i + 1}" for i in range(self.n)]


def build_bank(config: BankConfig, reference: Reference | None = None) -> SyntheticBank:
    """Draw the bank's ATMs, cards, users and account contacts from ``config.seed``."""
    config.validate()
    ref = reference or load_reference()
    rng = streams(config.seed)
    start_s = int(datetime.combine(config.start, time(), tzinfo=UTC).timestamp())
    atms = _atms(config, ref, rng["atms"])
    cards = _cards(config, ref, atms, rng["cards"], start_s)
    users = _users(config, ref, rng["users"], start_s)
    accounts = _accounts(config, ref, rng["accounts"])
    return SyntheticBank(
        config, ref, atms, cards, users, accounts, start_s, start_s + config.days * DAY, rng
    )


def _atms(config: BankConfig, ref: Reference, rng: np.random.Generator) -> Atms:
    n = config.atms_internal + config.atms_external
    # Picking a Wisabi location uniformly makes cities with more ATMs proportionally likelier.
    location = rng.integers(0, len(ref.location_cities), n)
    city = np.array([ref.city_index(ref.location_cities[i]) for i in location], dtype=np.int64)
    lat, lon = points_in_boxes(rng, ref.city_box, city)
    ids = [f"{config.bank_code}-{i + 1}" for i in range(config.atms_internal)]
    ids += [f"EXT-{i + 1}" for i in range(config.atms_external)]
    internal = [True] * config.atms_internal + [False] * config.atms_external
    return Atms(ids, lat.tolist(), lon.tolist(), city.tolist(), internal)


def _cards(
    config: BankConfig, ref: Reference, atms: Atms, rng: np.random.Generator, start_s: int
) -> Cards:
    m = config.cards
    behaviour = ref.behaviour[rng.integers(0, len(ref.behaviour), m)]
    extract_limit = np.round(5.0 * behaviour[:, 0], 2)
    # Home is somewhere in the city of a random ATM, so every card has a city with an ATM.
    home_city = np.asarray(atms.city, dtype=np.int64)[rng.integers(0, len(atms), m)]
    home_lat, home_lon = points_in_boxes(rng, ref.city_box, home_city)
    km = distance_matrix(home_lat, home_lon, atms.lat(), atms.lon())
    order = np.argsort(km, axis=1, kind="stable")[:, :MAX_USUAL_ATMS]
    within = np.take_along_axis(km, order, axis=1) <= config.near_km
    n_usual = np.maximum(within.sum(axis=1), 1)
    # Pad with the nearest ATM so that any index below MAX_USUAL_ATMS is a real ATM.
    usual = np.where(np.arange(order.shape[1])[None, :] < n_usual[:, None], order, order[:, :1])
    expiry_days = rng.integers(180, 5 * 365, m)
    expiration = np.datetime64(start_s, "s").astype("datetime64[D]") + expiry_days.astype(
        "timedelta64[D]"
    )
    cvc = [f"{v:03d}" for v in rng.integers(0, 1000, m)]
    return Cards(
        behaviour=behaviour,
        extract_limit=extract_limit,
        home_lat=home_lat,
        home_lon=home_lon,
        expiration=[str(d) for d in expiration],
        cvc=cvc,
        usual_atms=usual.astype(np.int64),
        n_usual_atms=n_usual.astype(np.int64),
    )


def new_device_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Opaque device hashes, as a fingerprinting SDK would send them."""
    return [f"{v:016x}" for v in rng.integers(0, 2**63 - 1, n, dtype=np.int64)]


def _users(config: BankConfig, ref: Reference, rng: np.random.Generator, start_s: int) -> Users:
    m = config.cards
    created_at = start_s - rng.integers(30 * DAY, 2000 * DAY, m)
    n_devices = rng.integers(1, 3, m)
    flat = new_device_ids(rng, int(n_devices.sum()))
    bounds = np.concatenate([[0], np.cumsum(n_devices)])
    devices = [flat[bounds[i] : bounds[i + 1]] for i in range(m)]
    home = ref.countries.codes.index("NG")
    prefixes = ref.countries.ip_prefixes[home]
    which = rng.integers(0, len(prefixes), m)
    third = rng.integers(0, 256, m)
    ip_prefix = [f"{prefixes[w]}.{t}" for w, t in zip(which, third, strict=True)]
    login_hour = rng.uniform(7.0, 22.0, m)
    low, high = config.logins_per_week
    logins_per_day = rng.uniform(low, high, m) / 7.0
    travel_pool = ref.countries.with_role("travel")
    travels = rng.random(m) < config.travel_rate
    travel_country = np.where(travels, rng.choice(travel_pool, m), -1)
    travel_start = start_s + rng.integers(0, config.days * DAY, m)
    travel_end = travel_start + rng.integers(2 * DAY, 8 * DAY, m)
    phone = [f"+234{v:010d}" for v in rng.integers(7_000_000_000, 9_999_999_999, m)]
    email = [f"user{i + 1}@example.com" for i in range(m)]
    return Users(
        created_at=created_at,
        devices=devices,
        ip_prefix=ip_prefix,
        login_hour=login_hour,
        logins_per_day=logins_per_day,
        travel_country=travel_country.astype(np.int64),
        travel_start=travel_start,
        travel_end=travel_end,
        email=email,
        phone=phone,
    )


def _accounts(config: BankConfig, ref: Reference, rng: np.random.Generator) -> Accounts:
    m = config.cards
    counterparty: list[str] = []
    country: list[str] = []
    abroad = [ref.countries.codes[i] for i in ref.countries.with_role("travel")]

    def table(per_account: int, abroad_share: float) -> tuple[Ints, Ints]:
        n = rng.integers(1, per_account + 1, m)
        slots = np.full((m, per_account), -1, dtype=np.int64)
        total = int(n.sum())
        foreign = rng.random(total) < abroad_share
        nations = np.where(foreign, rng.integers(0, len(abroad), total), -1)
        digits = rng.integers(0, 10**10, total)
        # A third of domestic counterparties bank with us; the rest elsewhere in Nigeria.
        internal = (~foreign) & (rng.random(total) < 1 / 3)
        peer = rng.integers(1, m + 1, total)
        first = len(counterparty)
        for k in range(total):
            if internal[k]:
                counterparty.append(f"a-{config.bank_code}-{peer[k]}")
                country.append("NG")
            else:
                cc = abroad[nations[k]] if foreign[k] else "NG"
                counterparty.append(f"{cc}{digits[k]:010d}")
                country.append(cc)
        rows = np.repeat(np.arange(m), n)
        cols = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
        slots[rows, cols] = first + np.arange(total)
        return slots, n.astype(np.int64)

    destinations, n_destinations = table(3, 0.12)
    payers, n_payers = table(2, 0.05)
    return Accounts(counterparty, country, destinations, n_destinations, payers, n_payers)
