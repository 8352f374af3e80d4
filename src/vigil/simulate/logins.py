"""Users' online life: logins at usual hours from usual devices, online and incoming transfers.

A user logs in a few times a week around a personal hour, from one of their 1-2 devices and
their usual IP prefix in Nigeria; a few travel abroad once and log in from there with a known
device (legitimate, and the reason "new country" alone is not fraud). Some sessions include an
online transfer to a usual counterparty; accounts also receive transfers from usual payers.

>>> from vigil.simulate.bank import build_bank
>>> from vigil.simulate.config import BankConfig
>>> bank = build_bank(BankConfig(cards=200, days=14))
>>> batch = user_logins(bank)
>>> set(batch.country) <= {"NG", "GH", "GB", "US", "AE", "ZA", "FR", "CN", "CA"}
True
"""

from __future__ import annotations

import numpy as np

from vigil.simulate.bank import DAY, LOCAL_OFFSET_S, SyntheticBank
from vigil.simulate.records import (
    CREDIT,
    DEBIT,
    ONLINE,
    TRANSFER,
    LoginBatch,
    TxBatch,
)
from vigil.simulate.transactions import draw_amounts, times_of_day

# How far an IP geolocation lands from the user's real place, in degrees.
_GEO_NOISE_DEG = 0.03


def ip_addresses(rng: np.random.Generator, prefixes: list[str], octets: int) -> list[str]:
    """Complete each prefix with ``octets`` random octets."""
    tail = rng.integers(1, 255, (len(prefixes), octets))
    if octets == 1:
        return [f"{p}.{t[0]}" for p, t in zip(prefixes, tail, strict=True)]
    return [f"{p}.{t[0]}.{t[1]}" for p, t in zip(prefixes, tail, strict=True)]


def user_logins(bank: SyntheticBank) -> LoginBatch:
    """Every user's legitimate login attempts over the period."""
    cfg, users, rng = bank.config, bank.users, bank.rng["logins"]
    countries = bank.reference.countries
    counts = rng.poisson(users.logins_per_day * cfg.days)
    user = np.repeat(np.arange(bank.n, dtype=np.int64), counts)
    n = len(user)
    hour = np.mod(rng.normal(users.login_hour[user], 1.5), 24.0)
    day = rng.integers(0, cfg.days, n)
    local = day * DAY + (hour * 3600).astype(np.int64) - LOCAL_OFFSET_S
    t = bank.start_s + np.mod(local, cfg.days * DAY)

    n_devices = np.array([len(d) for d in users.devices], dtype=np.int64)
    device_slot = (rng.random(n) * n_devices[user]).astype(np.int64)
    device = np.array(
        [users.devices[u][k] for u, k in zip(user, device_slot, strict=True)], dtype=object
    )

    away = users.travel_country[user]
    away = np.where(
        (away >= 0) & (users.travel_start[user] <= t) & (t < users.travel_end[user]), away, -1
    )
    home = countries.codes.index("NG")
    where = np.where(away >= 0, away, home)
    country = np.array(countries.codes, dtype=object)[where]
    lat = np.where(away >= 0, countries.latitude[where], bank.cards.home_lat[user])
    lon = np.where(away >= 0, countries.longitude[where], bank.cards.home_lon[user])
    lat = np.round(lat + rng.normal(0.0, _GEO_NOISE_DEG, n), 4)
    lon = np.round(lon + rng.normal(0.0, _GEO_NOISE_DEG, n), 4)
    foreign_prefix = rng.integers(0, 1 << 30, n)
    prefixes = [
        users.ip_prefix[u]
        if a < 0
        else countries.ip_prefixes[a][fp % len(countries.ip_prefixes[a])] + f".{fp % 251}"
        for u, a, fp in zip(user, away, foreign_prefix, strict=True)
    ]
    ip = np.array(ip_addresses(rng, prefixes, 1), dtype=object)
    success = rng.random(n) >= cfg.login_failure_rate
    session = np.clip(rng.lognormal(np.log(300.0), 0.8, n), 5.0, 7200.0).round(1)

    batch = LoginBatch.empty(n)
    batch.user, batch.time, batch.success = user, t, success
    batch.ip, batch.device, batch.country = ip, device, country
    batch.latitude, batch.longitude = lat, lon
    batch.session_seconds = np.where(success, session, 0.0)
    return batch


def online_transfers(bank: SyntheticBank, logins: LoginBatch) -> TxBatch:
    """Transfers to usual counterparties made inside some successful sessions."""
    rng, cards, accounts = bank.rng["online"], bank.cards, bank.accounts
    chosen = np.flatnonzero(
        logins.success & (rng.random(len(logins)) < bank.config.online_transfer_rate)
    )
    user = logins.user[chosen]
    n = len(chosen)
    session = logins.session_seconds[chosen]
    offset = (rng.uniform(0.1, 0.9, n) * np.maximum(session, 20.0)).astype(np.int64)
    slot = (rng.random(n) * accounts.n_destinations[user]).astype(np.int64)
    batch = TxBatch.empty(n)
    batch.account = user
    batch.start = batch.end = np.minimum(logins.time[chosen] + offset, bank.end_s - 1)
    batch.type[:] = TRANSFER
    batch.channel[:] = ONLINE
    batch.amount = draw_amounts(rng, cards.behaviour[user, 7], cards.behaviour[user, 8])
    batch.counterparty = accounts.destinations[user, slot]
    batch.direction[:] = DEBIT
    batch.ip = logins.ip[chosen]
    batch.device = logins.device[chosen]
    batch.latitude = logins.latitude[chosen]
    batch.longitude = logins.longitude[chosen]
    batch.country = logins.country[chosen]
    return batch


def incoming_transfers(bank: SyntheticBank) -> TxBatch:
    """Money arriving from each account's usual payers (salary, family)."""
    rng, cards, accounts = bank.rng["online"], bank.cards, bank.accounts
    rate = cards.behaviour[:, 9] * bank.config.incoming_transfer_ratio
    account = np.repeat(np.arange(bank.n, dtype=np.int64), rng.poisson(rate * bank.config.days))
    n = len(account)
    slot = (rng.random(n) * accounts.n_payers[account]).astype(np.int64)
    batch = TxBatch.empty(n)
    batch.account = account
    batch.start = batch.end = times_of_day(rng, bank.start_s, bank.config.days, n)
    batch.type[:] = TRANSFER
    batch.channel[:] = ONLINE
    batch.amount = draw_amounts(rng, 1.5 * cards.behaviour[account, 7], cards.behaviour[account, 8])
    batch.counterparty = accounts.payers[account, slot]
    batch.direction[:] = CREDIT
    return batch
