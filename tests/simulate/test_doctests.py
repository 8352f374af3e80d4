"""The examples in the simulate modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "vigil.geo",
    "vigil.simulate",
    "vigil.simulate.bank",
    "vigil.simulate.config",
    "vigil.simulate.frauds",
    "vigil.simulate.generator",
    "vigil.simulate.geo",
    "vigil.simulate.logins",
    "vigil.simulate.records",
    "vigil.simulate.reference",
    "vigil.simulate.standin",
    "vigil.simulate.transactions",
    "vigil.simulate.writer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no runnable example"
