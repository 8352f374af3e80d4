"""Whether a newly trained model may be promoted: no worse than the one it would replace.

``vigil train --promote`` promoted whatever it trained, a test average precision of 0.005
included. A new version is now promoted only if its test average precision is at least the
promoted version's (less ``tolerance``) and, with none promoted yet, above the test set's fraud
rate (what ranking at random scores). A refused version stays in the registry as a candidate;
``vigil models promote NAME VERSION`` promotes it anyway, as an explicit act.

>>> test = {"average_precision": 0.005, "rows": 1000, "positives": 20}
>>> promotion_refusal(test, None, None)
'test average precision 0.005 is no better than chance (the fraud rate, 0.020)'
>>> promotion_refusal({**test, "average_precision": 0.41}, {"average_precision": 0.40}, "v0002")
>>> promotion_refusal({**test, "average_precision": 0.30}, {"average_precision": 0.40}, "v0002")
"test average precision 0.300 is below the promoted v0002's 0.400"
>>> promotion_refusal({**test, "average_precision": 0.30}, None, None,
...                   alone={"the model alone": {"average_precision": 0.35}})
"test average precision 0.300 is below the model alone's 0.350"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def promotion_refusal(
    test: dict[str, Any],
    promoted_test: dict[str, Any] | None,
    promoted_version: str | None,
    *,
    tolerance: float = 0.0,
    alone: Mapping[str, Mapping[str, Any]] | None = None,
) -> str | None:
    """Why a model with these test metrics must not replace the promoted one; None if it may.

    ``alone`` names the test metrics of what a stacked model combines, each on the same rows
    (the combiner: the detectors alone, the model alone): it must rank no worse than any."""
    ours = test.get("average_precision")
    if ours is None:
        return "no test average precision (no fraud in the test period?)"
    for name, metrics in (alone or {}).items():
        theirs_alone = metrics.get("average_precision")
        if theirs_alone is not None and ours < theirs_alone:
            return f"test average precision {ours:.3f} is below {name}'s {theirs_alone:.3f}"
    theirs = None if promoted_test is None else promoted_test.get("average_precision")
    if theirs is None:
        rows, positives = test.get("rows") or 0, test.get("positives") or 0
        chance = positives / rows if rows else 0.0
        if ours <= chance:
            return (
                f"test average precision {ours:.3f} is no better than chance "
                f"(the fraud rate, {chance:.3f})"
            )
        return None
    if ours < theirs - tolerance:
        return (
            f"test average precision {ours:.3f} is below the promoted {promoted_version}'s "
            f"{theirs:.3f}"
        )
    return None
