"""Events naming a card or terminal that reference data does not know.

Such events are accepted, not rejected (a stream must not stall on a card issued after the
last reference import), and carry a reason code so an analyst sees them.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount=1, timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> [r.code for r in UnknownReference().detect(Context(tx, 0, 0, 0, 100, notes=["unknown_card"]))]
['unknown_card']
"""

from __future__ import annotations

from vigil.detect.context import Context
from vigil.domain import Reason

_SCORES = {"unknown_card": 0.5, "unknown_terminal": 0.3}
_DETAILS = {
    "unknown_card": "card {card} is not in reference data",
    "unknown_terminal": "terminal {terminal} is not in reference data",
}


class UnknownReference:
    codes = tuple(_SCORES)

    def detect(self, ctx: Context) -> list[Reason]:
        if not ctx.notes:
            return []
        event = ctx.event
        fields = {
            "card": getattr(event, "card_id", None),
            "terminal": getattr(event, "terminal_id", None),
        }
        return [
            Reason(code=code, score=_SCORES[code], detail=_DETAILS[code].format(**fields))
            for code in ctx.notes
            if code in _SCORES
        ]
