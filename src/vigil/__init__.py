"""vigil: learn how each customer, card, account, terminal and device behaves; decide on events.

The data scientist's path as Python calls (:mod:`vigil.steps`), each returning Polars frames:

>>> from vigil import build_features, read_events, score_transactions, train
>>> callable(read_events) and callable(train)
True
"""

from __future__ import annotations

from typing import Any

# The one place the version is written: pyproject.toml reads it (setuptools' dynamic version),
# and so do the API's OpenAPI document and `vigil --version`. Record each release in CHANGELOG.md.
__version__ = "0.1.0"

# Imported on first use, so `import vigil` (every command's start) stays light.
_STEPS = (
    "EventInput",
    "Trained",
    "build_features",
    "import_events",
    "read_events",
    "score_transactions",
    "train",
)
__all__ = ["__version__", *_STEPS]


def __getattr__(name: str) -> Any:
    if name in _STEPS:
        from vigil import steps

        return getattr(steps, name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_STEPS])
