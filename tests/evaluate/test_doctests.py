"""The examples in the evaluate package's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vigil.evaluate

SUBMODULES = [m.name for m in pkgutil.iter_modules(vigil.evaluate.__path__)]
MODULES = ["vigil.evaluate", *sorted(f"vigil.evaluate.{name}" for name in SUBMODULES)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
