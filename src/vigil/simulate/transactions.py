"""Legitimate ATM transactions of every card: Poisson counts, normal amounts, physical timing.

A card's operations never overlap, and between two of them there is always at least the time
needed to drive from one ATM to the next at ``legit_speed_kmh``. That is enforced without a
Python loop: with ``s_i = max(r_i, s_{i-1} + c_i)`` (raw time ``r``, minimum step ``c`` = previous
duration + travel + 1 s), writing ``C`` for the running sum of ``c`` gives
``s_i = C_i + max_{k<=i}(r_k - C_k)``: a cumulative maximum, segmented per card by an offset.

>>> import numpy as np
>>> card = np.array([0, 0, 0, 1]); raw = np.array([0, 10, 500, 5])
>>> dur = np.array([100, 100, 100, 100]); atm = np.zeros(4, dtype=np.int64)
>>> enforce_gaps(card, raw, dur, atm, np.zeros((1, 1)), 50.0).tolist()
[0, 101, 500, 5]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vigil.simulate.bank import DAY, LOCAL_OFFSET_S, SyntheticBank
from vigil.simulate.geo import travel_seconds
from vigil.simulate.records import (
    CREDIT,
    DEBIT,
    INQUIRY,
    TRANSFER,
    WITHDRAWAL,
    Floats,
    Ints,
    TxBatch,
)

# Relative ATM use by local hour of day: quiet nights, busy office hours.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.5, 1, 2, 4, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 4, 3, 2, 1.5]
)
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
# Behaviour columns (see reference.BEHAVIOUR_COLUMNS) per type code: rate, mean, std.
RATE_COLUMN = np.array([2, 5, 6, 9])
MEAN_COLUMN = np.array([0, 3, 0, 7])
STD_COLUMN = np.array([1, 4, 1, 8])
DIRECTION_OF_TYPE = np.array([DEBIT, CREDIT, -1, DEBIT], dtype=np.int8)
# Share of a card's operations at its nearest ATM; the rest spread over its other usual ATMs.
PRIMARY_ATM_SHARE = 0.6
MIN_STEP_S = 1
TRAVEL_MARGIN_S = 12 * 3600
_SEGMENT = np.int64(1) << np.int64(40)


def durations(rng: np.random.Generator, n: int) -> Ints:
    """ATM session lengths: about N(300 s, 120 s), kept within [30 s, 600 s]."""
    return np.clip(np.rint(rng.normal(300.0, 120.0, n)), 30, 600).astype(np.int64)


def draw_amounts(rng: np.random.Generator, mean: Floats, std: Floats) -> Floats:
    """Normal amounts; a negative draw becomes U(0, 2 x mean) instead."""
    amount = rng.normal(mean, std)
    negative = amount < 0
    amount[negative] = rng.uniform(0.0, 2.0 * mean[negative])
    return np.round(amount, 2)


def times_of_day(rng: np.random.Generator, start_s: int, days: int, n: int) -> Ints:
    """Unix seconds on a random day of the period at a random (busy-hour weighted) local time."""
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=HOUR_P)
    second = rng.integers(0, 3600, n)
    local = day * DAY + hour * 3600 + second - LOCAL_OFFSET_S
    # The first local hours of the period fall before it in UTC: wrap them to its end.
    return start_s + np.mod(local, days * DAY)


def enforce_gaps(
    card: Ints, raw: Ints, duration: Ints, atm: Ints, km: Floats, speed_kmh: float
) -> Ints:
    """Earliest start times >= ``raw`` that keep each card's operations apart (see module doc).

    Rows must be sorted by card, then by raw time.
    """
    n = len(raw)
    if n == 0:
        return raw.copy()
    first = np.ones(n, dtype=bool)
    first[1:] = card[1:] != card[:-1]
    step = np.zeros(n, dtype=np.int64)
    step[1:] = duration[:-1] + travel_seconds(km[atm[:-1], atm[1:]], speed_kmh) + MIN_STEP_S
    step[first] = 0
    total = np.cumsum(step)
    segment_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    c = total - total[segment_start]
    base = raw.min()
    key = (raw - base) - c
    if np.abs(key).max() >= _SEGMENT // 2:
        raise ValueError("days: the period is too long for the gap computation")
    segment = np.cumsum(first) - 1
    shifted = key + segment * _SEGMENT
    return np.maximum.accumulate(shifted) - segment * _SEGMENT + c + base


def atm_transactions(bank: SyntheticBank, km: Floats) -> TxBatch:
    """Every card's legitimate ATM operations over the period, sorted by card then start."""
    cfg, cards, rng = bank.config, bank.cards, bank.rng["transactions"]
    m = bank.n
    counts = rng.poisson(cards.behaviour[:, RATE_COLUMN] * cfg.days)
    card = np.repeat(np.arange(m, dtype=np.int64), counts.sum(axis=1))
    kind = np.repeat(np.tile(np.arange(4, dtype=np.int8), m), counts.ravel())
    n = len(card)
    raw = times_of_day(rng, bank.start_s, cfg.days, n)
    duration = durations(rng, n)
    pick = np.where(
        rng.random(n) < PRIMARY_ATM_SHARE,
        0,
        (rng.random(n) * cards.n_usual_atms[card]).astype(np.int64),
    )
    atm = cards.usual_atms[card, pick]
    mean = cards.behaviour[card, MEAN_COLUMN[kind]]
    amount = np.where(
        kind == INQUIRY, 0.0, draw_amounts(rng, mean, cards.behaviour[card, STD_COLUMN[kind]])
    )
    usual_slot = np.where(
        rng.random(n) < 0.7,
        0,
        (rng.random(n) * bank.accounts.n_destinations[card]).astype(np.int64),
    )
    counterparty = np.where(kind == TRANSFER, bank.accounts.destinations[card, usual_slot], -1)
    standin = (kind == WITHDRAWAL) & (rng.random(n) < cfg.standin_rate)

    order = np.lexsort((raw, card))
    card, kind, raw, duration, atm = (
        card[order],
        kind[order],
        raw[order],
        duration[order],
        atm[order],
    )
    amount, counterparty, standin = amount[order], counterparty[order], standin[order]
    start = enforce_gaps(card, raw, duration, atm, km, cfg.legit_speed_kmh)
    end = start + duration
    keep = end < bank.end_s
    # A user abroad does not use the card at home (nor just before the flight or after).
    users = bank.users
    keep &= ~(
        (users.travel_country[card] >= 0)
        & (end > users.travel_start[card] - TRAVEL_MARGIN_S)
        & (start < users.travel_end[card] + TRAVEL_MARGIN_S)
    )
    keep &= ~over_extract_limit(card, kind, start, amount, cards.extract_limit)

    batch = TxBatch.empty(int(keep.sum()))
    batch.card = card[keep]
    batch.account = card[keep]
    batch.start = start[keep]
    batch.end = end[keep]
    batch.two_phase[:] = True
    batch.type = kind[keep]
    batch.amount = amount[keep]
    batch.atm = atm[keep]
    batch.counterparty = counterparty[keep]
    batch.direction = DIRECTION_OF_TYPE[batch.type]
    batch.standin = standin[keep]
    return batch


def over_extract_limit(
    card: Ints, kind: npt.NDArray[np.int8], start: Ints, amount: Floats, limit: Floats
) -> npt.NDArray[np.bool_]:
    """Withdrawals the bank would decline: the card's last 24 h of withdrawals would pass its limit.

    Counting the declined ones too only makes the survivors' sums smaller, so after dropping
    them every rolling 24 h window (and so every calendar day) stays within the limit.
    """
    out = np.zeros(len(card), dtype=bool)
    w = np.flatnonzero(kind == WITHDRAWAL)
    if len(w) == 0:
        return out
    key = card[w] * (np.int64(1) << np.int64(36)) + (start[w] - start.min())
    total = np.concatenate([[0.0], np.cumsum(amount[w])])
    first = np.searchsorted(key, key - DAY, side="right")
    rolling = total[np.arange(1, len(w) + 1)] - total[first]
    # A cent of slack absorbs the float error of long running sums.
    out[w] = rolling > limit[card[w]] - 0.01
    return out
