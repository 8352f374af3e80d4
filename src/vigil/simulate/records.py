"""Column batches of generated transactions and logins, before they become event rows.

Indices stand in for ids (card ``i`` is ``c-<bank>-<i+1>``; ``-1`` means none) so that whole
batches stay numpy arrays until the writer turns them into strings once.

>>> import numpy as np
>>> a = TxBatch.empty(2); a.type[:] = WITHDRAWAL
>>> b = TxBatch.empty(1); b.type[:] = DEPOSIT
>>> TxBatch.concat([a, b]).type.tolist()
[0, 0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

# Transaction type codes: the ATM transaction stream layout's own numbering.
WITHDRAWAL, DEPOSIT, INQUIRY, TRANSFER = 0, 1, 2, 3
TYPE_NAMES = ("withdrawal", "deposit", "balance_inquiry", "transfer")
ATM, ONLINE = 0, 1
CHANNEL_NAMES = ("atm", "online")
DEBIT, CREDIT = 0, 1
DIRECTION_NAMES = ("debit", "credit")
LEGIT = -1  # pattern code of events that are not injected fraud

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def _objects(n: int) -> npt.NDArray[np.object_]:
    return np.full(n, None, dtype=object)


@dataclass
class TxBatch:
    """Transactions as columns; two-phase ones become a start and an end event when written.

    >>> TxBatch.empty(3).take(np.array([0, 2])).card.tolist()
    [-1, -1]
    """

    card: Ints
    account: Ints
    start: Ints  # unix seconds
    end: Ints  # == start for single-phase transactions
    two_phase: npt.NDArray[np.bool_]
    type: npt.NDArray[np.int8]
    channel: npt.NDArray[np.int8]
    amount: npt.NDArray[np.float64]
    atm: Ints
    counterparty: Ints
    direction: npt.NDArray[np.int8]  # -1 for balance inquiries
    ip: npt.NDArray[np.object_]
    device: npt.NDArray[np.object_]
    latitude: npt.NDArray[np.float64]  # nan: unknown (ATM events: the terminal says where)
    longitude: npt.NDArray[np.float64]
    country: npt.NDArray[np.object_]
    standin: npt.NDArray[np.bool_]
    pattern: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls, n: int) -> TxBatch:
        """``n`` single-phase ATM rows with nothing set: callers fill in what applies."""
        return cls(
            card=np.full(n, -1, np.int64),
            account=np.full(n, -1, np.int64),
            start=np.zeros(n, np.int64),
            end=np.zeros(n, np.int64),
            two_phase=np.zeros(n, bool),
            type=np.zeros(n, np.int8),
            channel=np.zeros(n, np.int8),
            amount=np.zeros(n, np.float64),
            atm=np.full(n, -1, np.int64),
            counterparty=np.full(n, -1, np.int64),
            direction=np.full(n, -1, np.int8),
            ip=_objects(n),
            device=_objects(n),
            latitude=np.full(n, np.nan),
            longitude=np.full(n, np.nan),
            country=_objects(n),
            standin=np.zeros(n, bool),
            pattern=np.full(n, LEGIT, np.int8),
        )

    @classmethod
    def concat(cls, batches: list[TxBatch]) -> TxBatch:
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )

    def take(self, index: Ints | npt.NDArray[np.bool_]) -> TxBatch:
        return TxBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class LoginBatch:
    """Login attempts as columns.

    >>> LoginBatch.concat([LoginBatch.empty(1), LoginBatch.empty(2)]).success.tolist()
    [True, True, True]
    """

    user: Ints
    time: Ints  # unix seconds
    success: npt.NDArray[np.bool_]
    ip: npt.NDArray[np.object_]
    device: npt.NDArray[np.object_]
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    country: npt.NDArray[np.object_]
    session_seconds: npt.NDArray[np.float64]
    pattern: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def empty(cls, n: int) -> LoginBatch:
        return cls(
            user=np.full(n, -1, np.int64),
            time=np.zeros(n, np.int64),
            success=np.ones(n, bool),
            ip=_objects(n),
            device=_objects(n),
            latitude=np.full(n, np.nan),
            longitude=np.full(n, np.nan),
            country=_objects(n),
            session_seconds=np.zeros(n, np.float64),
            pattern=np.full(n, LEGIT, np.int8),
        )

    @classmethod
    def concat(cls, batches: list[LoginBatch]) -> LoginBatch:
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )
