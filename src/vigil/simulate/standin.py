"""Outcomes of StandIn authorisations, learnable from the card's behaviour.

While the bank's host is unreachable the ATM network approves withdrawals on its own
(StandIn); settlement later shows whether the money came back (``standin_recovered``) or was
lost (``standin_loss``). Losses are likelier for erratic cards — amounts that vary a lot,
many withdrawals a day — and for amounts far above the card's usual one.

>>> import numpy as np
>>> calm, erratic = loss_probability(np.array([0.9, 1.3]), np.array([0.2, 1.1]), np.ones(2))
>>> bool(calm < 0.05 < 0.5 < erratic)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vigil.simulate.bank import DAY, SyntheticBank
from vigil.simulate.records import Floats, Ints, TxBatch

# Centre and spread of the Wisabi customers' coefficient of variation of withdrawals and of
# their withdrawals per day: the loss model speaks in standard units of the real population.
_CV_MEAN, _CV_SD = 1.063, 0.077
_RATE_MEAN, _RATE_SD = 0.370, 0.169


def loss_probability(cv: Floats, withdrawals_per_day: Floats, amount_ratio: Floats) -> Floats:
    """Chance that a StandIn withdrawal is never recovered."""
    z_cv = (cv - _CV_MEAN) / _CV_SD
    z_rate = (withdrawals_per_day - _RATE_MEAN) / _RATE_SD
    logit = -3.5 + 1.3 * z_cv + 1.1 * z_rate + 0.8 * (amount_ratio - 1.0)
    return 1.0 / (1.0 + np.exp(-logit))


@dataclass
class StandinOutcomes:
    """Which StandIn transactions were lost, and when settlement said so.

    >>> StandinOutcomes(np.array([4]), np.array([True]), np.array([100])).loss.tolist()
    [True]
    """

    transaction: Ints  # index into the transaction batch
    loss: npt.NDArray[np.bool_]
    time: Ints  # unix seconds of the settlement feedback


def standin_outcomes(bank: SyntheticBank, tx: TxBatch, rng: np.random.Generator) -> StandinOutcomes:
    """Settle every StandIn transaction of ``tx`` between 1 h and 3 days after it ended."""
    index = np.flatnonzero(tx.standin)
    card = tx.card[index]
    behaviour = bank.cards.behaviour[card]
    cv = behaviour[:, 1] / np.maximum(behaviour[:, 0], 1e-9)
    ratio = tx.amount[index] / np.maximum(behaviour[:, 0], 1e-9)
    p = loss_probability(cv, behaviour[:, 2], ratio)
    loss = rng.random(len(index)) < p
    time = tx.end[index] + rng.integers(3600, 3 * DAY, len(index))
    return StandinOutcomes(index, loss, time)
